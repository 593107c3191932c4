//! Configuration as the server reads it at start: environment variables (any of
//! the listed names, with arbitrary values) over a TOML file with arbitrary text.
//! A bad value is an error naming its variable, never a panic.
#![no_main]
use arbitrary::Arbitrary;
use gitclaw_server::config::{settings::SECTIONS, Config};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    env: Vec<(u8, String)>,
    file: Option<String>,
}

fuzz_target!(|input: Input| {
    let names: Vec<&'static str> = SECTIONS
        .iter()
        .flat_map(|s| s.settings.iter().map(|setting| setting.name()))
        .collect();
    let env: Vec<(&str, String)> = input
        .env
        .into_iter()
        .map(|(n, v)| (names[n as usize % names.len()], v))
        .collect();
    let dir = gitclaw_fuzz::scratch_dir();
    let file = input.file.map(|text| {
        let path = dir.path().join("gitclaw.toml");
        std::fs::write(&path, text).expect("writing the file");
        path
    });
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    };
    if let Err(errors) = Config::from_sources(lookup, file.as_deref()) {
        assert!(!errors.is_empty());
    }
});
