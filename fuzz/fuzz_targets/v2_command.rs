//! A protocol v2 command request, then its arguments as the server reads them:
//! `ls-refs` (ref prefixes, symrefs, peel), `fetch` (wants, haves, shallow and
//! every deepen form, filter specs, want-ref).
#![no_main]
use gitclaw_protocol::v2::{parse_command_request, FetchArgs, LsRefsArgs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(Some(request)) = parse_command_request(data) else {
        return;
    };
    // Whatever the command line said, both argument parsers see the arguments.
    let _ = LsRefsArgs::parse(&request.args);
    if let Ok(args) = FetchArgs::parse(&request.args) {
        if let Some(spec) = args.filter.as_deref() {
            let _ = gitclaw_pack::walk::Filter::parse(spec);
        }
    }
});
