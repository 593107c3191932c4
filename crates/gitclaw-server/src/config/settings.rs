//! Every setting, once: its name, the values it takes, its default, what it does
//! and the names it had before. The loader (`super`), the known-key check of the
//! configuration file, `gitclaw serve --help` and the README's tables all read
//! these rows; a default or a bound written here is written nowhere else.
//!
//! Help text is markdown on one line: the README shows it as is, `--help`
//! without the backticks.

use gitclaw_pack::fsck::FsckLevel;

use super::{
    kinds::{
        Address, BucketName, Choice, DatabaseUrl, Flag, HttpUrl, Kind, Number, RedisUrl, Secret,
        Size, Text,
    },
    LogFormat,
};

/// One setting.
pub struct Setting<K> {
    /// The environment variable; in lower case, the configuration file's key.
    pub name: &'static str,
    pub kind: K,
    pub default: Fallback,
    /// What the setting does, in markdown on one line.
    pub help: &'static str,
    /// Former names, still read (with a warning) when the current name is not set.
    pub deprecated: &'static [&'static str],
}

/// What a setting is when nothing sets it.
pub enum Fallback {
    /// This text, read like a value the user gave.
    Value(&'static str),
    /// No value: what happens instead, in markdown.
    Absent(&'static str),
}

use Fallback::{Absent, Value};

impl<K: Kind> Setting<K> {
    /// The value of the listed default; `None` when the default is an absence.
    ///
    /// Panics when the listed default is not a value of the setting's kind (a test
    /// reads every one).
    pub fn default_value(&self) -> Option<K::Value> {
        match self.default {
            Value(text) => Some(self.kind.parse(text).unwrap_or_else(|err| {
                panic!("{}: the listed default is refused: {err}", self.name)
            })),
            Absent(_) => None,
        }
    }
}

/// A setting whatever its kind: what the help and the README show of it.
pub trait Listed {
    fn name(&self) -> &'static str;
    fn deprecated(&self) -> &'static [&'static str];
    fn help(&self) -> &'static str;
    fn default(&self) -> &Fallback;
    /// What values are accepted, in markdown.
    fn accepts(&self) -> String;
}

impl<K: Kind> Listed for Setting<K> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn deprecated(&self) -> &'static [&'static str] {
        self.deprecated
    }
    fn help(&self) -> &'static str {
        self.help
    }
    fn default(&self) -> &Fallback {
        &self.default
    }
    fn accepts(&self) -> String {
        self.kind.accepts()
    }
}

/// Settings shown together: one table in the README, one block in `--help`.
pub struct Section {
    pub title: &'static str,
    pub settings: &'static [&'static dyn Listed],
}

/// Every setting, in the order the help and the README show them.
pub const SECTIONS: &[Section] = &[
    Section {
        title: "Server",
        settings: &[
            &LISTEN,
            &TLS_CERT,
            &TLS_KEY,
            &DATA_DIR,
            &DATABASE_URL,
            &DB_MAX_CONNECTIONS,
            &MAX_PACK_BYTES,
            &MAX_OBJECT_BYTES,
            &MAX_REPO_BYTES,
            &MAX_CONCURRENT_PUSHES,
            &PUSH_WAIT_SECS,
            &MAX_PACK_GENERATIONS,
            &MAX_PACK_GENERATIONS_PER_REPO,
            &PACK_QUEUE,
            &PACK_WAIT_SECS,
            &PUBLIC_URL,
            &GC_LOOSE_THRESHOLD,
            &GC_PACK_THRESHOLD,
            &GC_CLOSURE_THRESHOLD,
            &MAX_CONCURRENT_COMPACTIONS,
            &GC_GRACE_SECS,
            &GC_TIP_ENTRIES,
            &BUNDLE_URIS,
            &BUNDLE_MIN_BYTES,
            &WEBHOOK_PRIVATE_TARGETS,
            &RESPONSE_CACHE_BYTES,
            &RESPONSE_CACHE_MIN_OCCURRENCES,
            &OBJECT_CACHE_BYTES,
            &METADATA_CACHE_BYTES,
            &DOWNLOAD_CACHE_BYTES,
            &OPEN_PACK_CACHE_BYTES,
            &RANGE_READS_ABOVE_BYTES,
            &INDEX_RANGE_READS_ABOVE_BYTES,
            &PACK_WINDOW,
            &PACK_DEPTH,
            &HEADER_TIMEOUT_SECS,
            &BODY_TIMEOUT_SECS,
            &BODY_MIN_RATE,
            &SEND_TIMEOUT_SECS,
            &MAX_CONNECTIONS,
            &SWEEP_INTERVAL_SECS,
            &CLAIM_LEASE_SECS,
            &FSCK_OBJECTS,
            &SLOW_REQUEST_MS,
            &SLOW_DB_MS,
            &METRICS_REPOS,
            &METRICS_LISTEN,
            &METRICS_TLS,
            &LOG_FORMAT,
        ],
    },
    Section {
        title: "Git LFS",
        settings: &[&LFS_MAX_OBJECT_BYTES, &LFS_URL_EXPIRY_SECS],
    },
    Section {
        title: "Authentication",
        settings: &[&ADMIN_TOKEN, &ALLOW_ANONYMOUS, &METRICS_TOKEN],
    },
    Section {
        title: "Shared metadata cache (Redis)",
        settings: &[
            &REDIS_URL,
            &REDIS_TTL_SECS,
            &REDIS_TOKEN_TTL_SECS,
            &REDIS_TIMEOUT_MS,
            &REDIS_CA_CERT,
            &REDIS_CLIENT_CERT,
            &REDIS_CLIENT_KEY,
        ],
    },
    Section {
        title: "Object store (S3)",
        settings: &[
            &S3_BUCKET,
            &S3_REGION,
            &S3_ENDPOINT,
            &S3_ACCESS_KEY_ID,
            &S3_SECRET_ACCESS_KEY,
            &S3_USE_PATH_STYLE,
            &S3_AUTO_CREATE_BUCKET,
            &S3_CA_CERT,
            &S3_MAX_RETRIES,
            &S3_RETRY_MAX_BACKOFF,
            &S3_SLOW_OP_MS,
            &S3_CONNECT_TIMEOUT_MS,
            &S3_READ_TIMEOUT_MS,
        ],
    },
];

/// Every setting of every section.
pub fn all() -> impl Iterator<Item = &'static dyn Listed> {
    SECTIONS.iter().flat_map(|s| s.settings.iter().copied())
}

/// Whether the configuration file may set `name` (upper case): a setting's name
/// or one of its former names.
pub fn is_known(name: &str) -> bool {
    all().any(|s| s.name() == name || s.deprecated().contains(&name))
}

// The shared metadata cache.

pub const REDIS_URL: Setting<RedisUrl> = Setting {
    name: "REDIS_URL",
    kind: RedisUrl,
    default: Absent("unset: no shared cache"),
    help: "Redis shared by every instance, caching refs, pack and loose-object lists (by repository version, never stale) and token lookups; requests go on against the database whenever it does not answer",
    deprecated: &[],
};

pub const REDIS_TTL_SECS: Setting<Number> = Setting {
    name: "GITCLAW_REDIS_TTL_SECS",
    kind: Number::at_least(1),
    default: Value("600"),
    help: "how long a repository's cached lists live (a push makes new ones; this bounds Redis memory)",
    deprecated: &[],
};

pub const REDIS_TOKEN_TTL_SECS: Setting<Number> = Setting {
    name: "GITCLAW_REDIS_TOKEN_TTL_SECS",
    kind: Number::at_least(1),
    default: Value("30"),
    help: "how long a token lookup is reused; a revocation removes it at once, and only if Redis cannot be told may another instance accept the revoked token this long",
    deprecated: &[],
};

pub const REDIS_TIMEOUT_MS: Setting<Number> = Setting {
    name: "GITCLAW_REDIS_TIMEOUT_MS",
    kind: Number::at_least(1),
    default: Value("250"),
    help: "the longest a Redis call may take before the request goes on against the database",
    deprecated: &[],
};

pub const REDIS_CA_CERT: Setting<Text> = Setting {
    name: "GITCLAW_REDIS_CA_CERT",
    kind: Text { what: "path" },
    default: Absent("the system's CAs"),
    help: "for a `rediss://` URL, PEM file of the CA the server's certificate must chain to (trusted instead of the system's)",
    deprecated: &[],
};

pub const REDIS_CLIENT_CERT: Setting<Text> = Setting {
    name: "GITCLAW_REDIS_CLIENT_CERT",
    kind: Text { what: "path" },
    default: Absent("none"),
    help: "for a `rediss://` URL to a server that asks for client certificates (`tls-auth-clients yes`), PEM file of the certificate to present, with `GITCLAW_REDIS_CLIENT_KEY`",
    deprecated: &[],
};

pub const REDIS_CLIENT_KEY: Setting<Text> = Setting {
    name: "GITCLAW_REDIS_CLIENT_KEY",
    kind: Text { what: "path" },
    default: Absent("none"),
    help: "PEM file of the private key of `GITCLAW_REDIS_CLIENT_CERT`",
    deprecated: &[],
};

// The server.

pub const LISTEN: Setting<Address> = Setting {
    name: "GITCLAW_LISTEN",
    kind: Address,
    default: Value("127.0.0.1:8080"),
    help: "address to listen on",
    deprecated: &[],
};

pub const TLS_CERT: Setting<Text> = Setting {
    name: "GITCLAW_TLS_CERT",
    kind: Text { what: "path" },
    default: Absent("unset: plain HTTP (TLS left to a proxy in front)"),
    help: "PEM file of the certificate chain (the server's first) to serve HTTPS with on `GITCLAW_LISTEN`; read again when it changes",
    deprecated: &[],
};

pub const TLS_KEY: Setting<Text> = Setting {
    name: "GITCLAW_TLS_KEY",
    kind: Text { what: "path" },
    default: Absent("none"),
    help: "PEM file of the private key of `GITCLAW_TLS_CERT`; read again when it changes",
    deprecated: &[],
};

pub const DATA_DIR: Setting<Text> = Setting {
    name: "GITCLAW_DATA_DIR",
    kind: Text { what: "path" },
    default: Value("./gitclaw-data"),
    help: "home of the embedded default: SQLite file, filesystem object store, scratch space",
    deprecated: &[],
};

pub const DATABASE_URL: Setting<DatabaseUrl> = Setting {
    name: "DATABASE_URL",
    kind: DatabaseUrl,
    default: Absent("`sqlite://$GITCLAW_DATA_DIR/gitclaw.db`"),
    help: "the database: SQLite, or PostgreSQL shared by several servers",
    deprecated: &[],
};

pub const DB_MAX_CONNECTIONS: Setting<Number> = Setting {
    name: "GITCLAW_DB_MAX_CONNECTIONS",
    kind: Number { min: 1, max: 10000 },
    default: Absent("16 for PostgreSQL (4 of them kept open), 8 for an SQLite file"),
    help: "database connections this process holds at most (every instance's count together must stay under PostgreSQL's `max_connections`)",
    deprecated: &[],
};

pub const MAX_PACK_BYTES: Setting<Size> = Setting {
    name: "GITCLAW_MAX_PACK_BYTES",
    kind: Size { positive: true },
    default: Value("2G"),
    help: "largest pack a push may send",
    deprecated: &[],
};

pub const MAX_OBJECT_BYTES: Setting<Size> = Setting {
    name: "GITCLAW_MAX_OBJECT_BYTES",
    kind: Size { positive: true },
    default: Value("1G"),
    help: "largest object a push may hold, by its inflated size (a file's content, or what a delta makes); a push holding a bigger one is refused, by the size its pack states, before it is inflated, and changes no ref. An object above 16 MiB stored whole is indexed without being held in memory; a delta's base and result are held while it is resolved (see Memory)",
    deprecated: &[],
};

pub const MAX_REPO_BYTES: Setting<Size> = Setting {
    name: "GITCLAW_MAX_REPO_BYTES",
    kind: Size { positive: false },
    default: Value("0"),
    help: "most bytes a repository's objects may take in the store (packs, their indexes and loose objects as recorded; LFS objects not counted): a push that brings objects to a repository at or past it, or that would take it past it, is refused whole, before it is indexed; pushes that add no objects (deletions, refs moved to commits it has) still go through, so a repository can be cut down and compacted (`0`: no limit). A repository's own limit, set by an admin (`PATCH /api/v1/repos/OWNER/NAME {\"max_bytes\": N}`), is kept instead",
    deprecated: &[],
};

pub const LFS_MAX_OBJECT_BYTES: Setting<Size> = Setting {
    name: "GITCLAW_LFS_MAX_OBJECT_BYTES",
    kind: Size { positive: true },
    default: Value("5G"),
    help: "largest Git LFS object accepted (a batch refuses a bigger one with a per-object error 422); with S3 an object above 5 GiB, the largest single PUT, is refused whatever this says",
    deprecated: &[],
};

pub const LFS_URL_EXPIRY_SECS: Setting<Number> = Setting {
    name: "GITCLAW_LFS_URL_EXPIRY_SECS",
    kind: Number::at_least(1),
    default: Value("900"),
    help: "how long the presigned S3 URLs of a Git LFS batch answer stay valid (seconds); a transfer must start within it",
    deprecated: &[],
};

pub const MAX_CONCURRENT_PUSHES: Setting<Number> = Setting {
    name: "GITCLAW_MAX_CONCURRENT_PUSHES",
    kind: Number::at_least(1),
    default: Value("16"),
    help: "pushes processed at once; others wait up to `GITCLAW_PUSH_WAIT_SECS`, then are refused with a reason",
    deprecated: &[],
};

pub const PUSH_WAIT_SECS: Setting<Number> = Setting {
    name: "GITCLAW_PUSH_WAIT_SECS",
    kind: Number::ANY,
    default: Value("60"),
    help: "how long a push waits for a free slot",
    deprecated: &[],
};

pub const SLOW_REQUEST_MS: Setting<Number> = Setting {
    name: "GITCLAW_SLOW_REQUEST_MS",
    kind: Number::at_least(1),
    default: Value("10000"),
    help: "a git request slower than this logs a warning naming the service, the repository, the duration and the request id",
    deprecated: &[],
};

pub const SLOW_DB_MS: Setting<Number> = Setting {
    name: "GITCLAW_SLOW_DB_MS",
    kind: Number::at_least(1),
    default: Value("1000"),
    help: "a database statement slower than this logs a warning with its SQL and duration",
    deprecated: &[],
};

pub const METRICS_REPOS: Setting<Number> = Setting {
    name: "GITCLAW_METRICS_REPOS",
    kind: Number::ANY,
    default: Value("100"),
    help: "how many repositories (the largest) `/metrics` reports objects and bytes for; the rest only through the stats endpoint (`0`: none)",
    deprecated: &[],
};

pub const MAX_PACK_GENERATIONS: Setting<Number> = Setting {
    name: "GITCLAW_MAX_PACK_GENERATIONS",
    kind: Number::at_least(1),
    default: Value("8"),
    help: "packs (and archives) generated at once on this instance (a fetch answered by a stored pack or the response cache needs no turn)",
    deprecated: &[],
};

pub const MAX_PACK_GENERATIONS_PER_REPO: Setting<Number> = Setting {
    name: "GITCLAW_MAX_PACK_GENERATIONS_PER_REPO",
    kind: Number::at_least(1),
    default: Value("4"),
    help: "packs (and archives) generated at once for one repository",
    deprecated: &[],
};

pub const PACK_QUEUE: Setting<Number> = Setting {
    name: "GITCLAW_PACK_QUEUE",
    kind: Number::ANY,
    default: Value("64"),
    help: "fetches that may wait for a turn to generate a pack; past them a fetch is refused at once with a message git shows (`0`: none wait)",
    deprecated: &[],
};

pub const PACK_WAIT_SECS: Setting<Number> = Setting {
    name: "GITCLAW_PACK_WAIT_SECS",
    kind: Number::ANY,
    default: Value("30"),
    help: "how long a fetch waits for a turn to generate its pack before it is refused",
    deprecated: &[],
};

pub const METRICS_LISTEN: Setting<Address> = Setting {
    name: "GITCLAW_METRICS_LISTEN",
    kind: Address,
    default: Absent("unset: `/metrics` is served on `GITCLAW_LISTEN`"),
    help: "a second address serving only `/metrics`, `/healthz` and `/readyz` (then `GITCLAW_LISTEN` answers 404 for `/metrics`)",
    deprecated: &[],
};

pub const METRICS_TLS: Setting<Flag> = Setting {
    name: "GITCLAW_METRICS_TLS",
    kind: Flag,
    default: Value("false"),
    help: "serve `GITCLAW_METRICS_LISTEN` over HTTPS too, with the certificate of `GITCLAW_TLS_CERT` (renewed with it); needs both",
    deprecated: &[],
};

pub const PUBLIC_URL: Setting<HttpUrl> = Setting {
    name: "GITCLAW_PUBLIC_URL",
    kind: HttpUrl {
        example: "https://git.example.com",
    },
    default: Absent("`http://$GITCLAW_LISTEN`"),
    help: "base URL used in `clone_url` answers",
    deprecated: &[],
};

pub const GC_LOOSE_THRESHOLD: Setting<Number> = Setting {
    name: "GITCLAW_GC_LOOSE_THRESHOLD",
    kind: Number::ANY,
    default: Value("100"),
    help: "compact a repository automatically after a push once it has more loose objects than this (`0`: never)",
    deprecated: &[],
};

pub const GC_PACK_THRESHOLD: Setting<Number> = Setting {
    name: "GITCLAW_GC_PACK_THRESHOLD",
    kind: Number::ANY,
    default: Value("10"),
    help: "… or more packs than this (`0`: never)",
    deprecated: &[],
};

pub const GC_CLOSURE_THRESHOLD: Setting<Number> = Setting {
    name: "GITCLAW_GC_CLOSURE_THRESHOLD",
    kind: Number::ANY,
    default: Value("10000"),
    help: "after a push that leaves a repository as one pack of more objects than this, holding what its refs reach (a whole history pushed at once), record its commit-graph, tip entries and pack order in the background, as compaction would (`0`: never; `gitclaw gc` records it too)",
    deprecated: &[],
};

pub const MAX_CONCURRENT_COMPACTIONS: Setting<Number> = Setting {
    name: "GITCLAW_MAX_CONCURRENT_COMPACTIONS",
    kind: Number::at_least(1),
    default: Value("1"),
    help: "compactions this process runs at once (the automatic ones after pushes, the record of a whole history pushed at once, a migration's); others wait their turn. Each holds up to about 1 KB an object of its repository while it runs",
    deprecated: &[],
};

pub const GC_GRACE_SECS: Setting<Number> = Setting {
    name: "GITCLAW_GC_GRACE_SECS",
    kind: Number::ANY,
    default: Value("3600"),
    help: "keys replaced by compaction are deleted this long after, so clones in flight finish",
    deprecated: &[],
};

pub const GC_TIP_ENTRIES: Setting<Flag> = Setting {
    name: "GITCLAW_GC_TIP_ENTRIES",
    kind: Flag,
    default: Value("true"),
    help: "compaction stores, beside the compacted pack, the entries a `--depth 1` clone of each branch head (the default one first) sends in place of deltas against objects outside its tree, so such a clone copies stored bytes and searches for no delta; packs sent are unchanged",
    deprecated: &[],
};

pub const BUNDLE_URIS: Setting<Flag> = Setting {
    name: "GITCLAW_BUNDLE_URIS",
    kind: Flag,
    default: Value("true"),
    help: "offer git clients that ask for one (`git -c transfer.bundleURI=true clone`, protocol v2 `bundle-uri`) the repository's compacted pack as a bundle to download first, served by this server from the store as it lies; the clone then fetches only what is newer",
    deprecated: &[],
};

pub const BUNDLE_MIN_BYTES: Setting<Size> = Setting {
    name: "GITCLAW_BUNDLE_MIN_BYTES",
    kind: Size { positive: false },
    default: Value("1M"),
    help: "a compacted pack smaller than this is not offered as a bundle: cloning it costs less than the bundle's extra download",
    deprecated: &[],
};

pub const WEBHOOK_PRIVATE_TARGETS: Setting<Flag> = Setting {
    name: "GITCLAW_WEBHOOK_PRIVATE_TARGETS",
    kind: Flag,
    default: Value("true"),
    help: "webhooks may be sent to loopback, private, link-local and other non-public addresses (a CI server on the internal network); `false` refuses such a URL when a webhook is created, and a host name that resolves only to such addresses when a delivery is sent",
    deprecated: &[],
};

pub const RESPONSE_CACHE_BYTES: Setting<Size> = Setting {
    name: "GITCLAW_RESPONSE_CACHE_BYTES",
    kind: Size { positive: false },
    default: Value("1G"),
    help: "disk space for generated clone responses, reused when the same clone (same commits, depth, filter) is asked for again — what CI does; least recently used go first (`0`: off)",
    deprecated: &["GITCLAW_PACK_CACHE_BYTES"],
};

pub const RESPONSE_CACHE_MIN_OCCURRENCES: Setting<Number> = Setting {
    name: "GITCLAW_RESPONSE_CACHE_MIN_OCCURRENCES",
    kind: Number::at_least(1),
    default: Value("1"),
    help: "a generated clone response is kept once the same clone has been asked for this many times (or others shared it while it was made); `2` keeps one-off clones out of the cache",
    deprecated: &[],
};

pub const OBJECT_CACHE_BYTES: Setting<Size> = Setting {
    name: "GITCLAW_OBJECT_CACHE_BYTES",
    kind: Size { positive: false },
    default: Value("256M"),
    help: "memory for inflated commits and trees shared by all fetches, so history walks skip inflating them again, an eighth of it for commits parsed once for every walk (`0`: off)",
    deprecated: &[],
};

pub const METADATA_CACHE_BYTES: Setting<Size> = Setting {
    name: "GITCLAW_METADATA_CACHE_BYTES",
    kind: Size { positive: false },
    default: Value("16M"),
    help: "memory for repositories' refs and pack and loose-object lists, kept by the version of the repository they were read at (bumped with every change to them), so a repository's requests read them from the database once per change, not each time (`0`: off)",
    deprecated: &[],
};

pub const DOWNLOAD_CACHE_BYTES: Setting<Size> = Setting {
    name: "GITCLAW_DOWNLOAD_CACHE_BYTES",
    kind: Size { positive: false },
    default: Value("10G"),
    help: "disk space for packs downloaded from S3 into `$GITCLAW_DATA_DIR/cache` (least recently used go first)",
    deprecated: &["GITCLAW_STORE_CACHE_BYTES"],
};

pub const OPEN_PACK_CACHE_BYTES: Setting<Size> = Setting {
    name: "GITCLAW_OPEN_PACK_CACHE_BYTES",
    kind: Size { positive: false },
    default: Value("256M"),
    help: "memory for the tables of packs read in place (the filesystem store) kept open between requests: each entry's place in the pack and its type, 12¼ bytes an object (20¼ in a pack over 4 GiB), and a compacted pack's tip entries; the least recently used pack is closed first, and one whose tables need more than this is opened for each request (a downloaded pack's tables, under half its index's size, three quarters for a pack over 4 GiB, count against the download cache instead)",
    deprecated: &[],
};

pub const RANGE_READS_ABOVE_BYTES: Setting<Size> = Setting {
    name: "GITCLAW_RANGE_READS_ABOVE_BYTES",
    kind: Size { positive: false },
    default: Value("8M"),
    help: "packs in S3 larger than this are read by ranges (1 MiB blocks) as requests need their bytes, not downloaded whole first, so a shallow clone of a big pack on a fresh instance reads only what it sends; smaller packs are downloaded whole (`0`: every pack by ranges)",
    deprecated: &[],
};

pub const INDEX_RANGE_READS_ABOVE_BYTES: Setting<Size> = Setting {
    name: "GITCLAW_INDEX_RANGE_READS_ABOVE_BYTES",
    kind: Size { positive: false },
    default: Value("4G"),
    help: "the index of a pack read by ranges is read by ranges too when larger than this: opening it reads all but its object ids (8 of its 28 bytes an object), a lookup the ids of one of its 256 fanout buckets, and the rest comes down behind the request that opened it; a smaller index is downloaded whole first, which measured faster at every size tried (up to 5 million objects, a 141 MB index, on a store on the same machine), hence the default; lower it for a store whose bandwidth, not its round trips, is what is scarce (`0`: every such index by ranges)",
    deprecated: &[],
};

pub const PACK_WINDOW: Setting<Number> = Setting {
    name: "GITCLAW_PACK_WINDOW",
    // Each entry of the window holds an object's body in memory.
    kind: Number { min: 0, max: 1000 },
    default: Value("10"),
    help: "objects each delta candidate is compared with when clones, fetches and compaction search for deltas (git's `pack.window`; `0`: no search)",
    deprecated: &[],
};

pub const PACK_DEPTH: Setting<Number> = Setting {
    name: "GITCLAW_PACK_DEPTH",
    // Readers (git's and ours) follow chains up to 4095 deep.
    kind: Number { min: 1, max: 4095 },
    default: Value("50"),
    help: "longest chain of new deltas (git's `pack.depth`)",
    deprecated: &[],
};

pub const HEADER_TIMEOUT_SECS: Setting<Number> = Setting {
    name: "GITCLAW_HEADER_TIMEOUT_SECS",
    kind: Number { min: 1, max: 86400 },
    default: Value("30"),
    help: "a request's headers must arrive within this; an idle kept-alive connection is closed after as long",
    deprecated: &[],
};

pub const BODY_TIMEOUT_SECS: Setting<Number> = Setting {
    name: "GITCLAW_BODY_TIMEOUT_SECS",
    kind: Number { min: 1, max: 86400 },
    default: Value("60"),
    help: "longest silence while a request body arrives (the request fails, the connection closes), and the stretch over which its rate is measured",
    deprecated: &[],
};

pub const BODY_MIN_RATE: Setting<Size> = Setting {
    name: "GITCLAW_BODY_MIN_RATE",
    kind: Size { positive: false },
    default: Value("1K"),
    help: "slowest request body accepted, bytes a second over each such stretch (`0`: any)",
    deprecated: &[],
};

pub const SEND_TIMEOUT_SECS: Setting<Number> = Setting {
    name: "GITCLAW_SEND_TIMEOUT_SECS",
    kind: Number { min: 1, max: 86400 },
    default: Value("120"),
    help: "a client that takes none of its response for this long is cut off",
    deprecated: &[],
};

pub const MAX_CONNECTIONS: Setting<Number> = Setting {
    name: "GITCLAW_MAX_CONNECTIONS",
    kind: Number::at_least(1),
    default: Value("1024"),
    help: "client connections served at once; further ones wait, unanswered, until one closes (what each may hold is bounded, so this bounds memory; `GITCLAW_METRICS_LISTEN` has its own few)",
    deprecated: &[],
};

pub const SWEEP_INTERVAL_SECS: Setting<Number> = Setting {
    name: "GITCLAW_SWEEP_INTERVAL_SECS",
    kind: Number::ANY,
    default: Value("21600"),
    help: "how often every repository's store keys that no row records (left by failed or killed pushes) are deleted once older than `GITCLAW_GC_GRACE_SECS` (`0`: only by `gitclaw gc`)",
    deprecated: &[],
};

pub const CLAIM_LEASE_SECS: Setting<Number> = Setting {
    name: "GITCLAW_CLAIM_LEASE_SECS",
    kind: Number::ANY,
    default: Value("300"),
    help: "a push holds the keys it writes until its commit under a lease of this length, renewed while it runs; a killed process's leases lapse after it",
    deprecated: &[],
};

pub const FSCK_OBJECTS: Setting<Choice<FsckLevel>> = Setting {
    name: "GITCLAW_FSCK_OBJECTS",
    kind: Choice(&FsckLevel::NAMES),
    default: Value("safe"),
    help: "checks a pushed object must pass, named as `git fsck` names them: `safe` refuses tree entries git will not check out (`.git` in any case or disguise, `.`, `..`, empty names, names with `/`, a symlinked `.gitmodules`); `strict` adds the rest of `git fsck --strict`'s object checks (file modes, sorting and duplicates in trees, commit and tag headers); `off` only parses",
    deprecated: &[],
};

pub const LOG_FORMAT: Setting<Choice<LogFormat>> = Setting {
    name: "GITCLAW_LOG_FORMAT",
    kind: Choice(&LogFormat::NAMES),
    default: Value("text"),
    help: "how logs are written (their filter is `RUST_LOG`)",
    deprecated: &[],
};

// Authentication.

pub const ADMIN_TOKEN: Setting<Secret> = Setting {
    name: "GITCLAW_ADMIN_TOKEN",
    kind: Secret { min_len: 16 },
    default: Absent("unset: the server runs open"),
    help: "bootstrap admin token; setting it turns authentication on",
    deprecated: &[],
};

pub const METRICS_TOKEN: Setting<Secret> = Setting {
    name: "GITCLAW_METRICS_TOKEN",
    kind: Secret { min_len: 16 },
    default: Absent("unset: `/metrics` is open"),
    help: "bearer token a scraper must send for `/metrics` (`Authorization: Bearer …`)",
    deprecated: &[],
};

pub const ALLOW_ANONYMOUS: Setting<Flag> = Setting {
    name: "GITCLAW_ALLOW_ANONYMOUS",
    kind: Flag,
    default: Value("false"),
    help: "`true` lets an open server listen on a non-loopback address",
    deprecated: &[],
};

// The object store.

pub const S3_BUCKET: Setting<BucketName> = Setting {
    name: "S3_BUCKET",
    kind: BucketName,
    default: Absent("unset: the filesystem"),
    help: "bucket name; setting it selects S3",
    deprecated: &[],
};

pub const S3_REGION: Setting<Text> = Setting {
    name: "S3_REGION",
    kind: Text { what: "text" },
    default: Absent("required with S3"),
    help: "region (`us-east-1`…; `auto` for R2, `garage` for Garage)",
    deprecated: &[],
};

pub const S3_ENDPOINT: Setting<HttpUrl> = Setting {
    name: "S3_ENDPOINT",
    kind: HttpUrl {
        example: "http://127.0.0.1:3900",
    },
    default: Absent("AWS"),
    help: "endpoint URL of a non-AWS store (`http://127.0.0.1:9000`)",
    deprecated: &[],
};

pub const S3_ACCESS_KEY_ID: Setting<Text> = Setting {
    name: "S3_ACCESS_KEY_ID",
    kind: Text { what: "text" },
    default: Absent("the AWS default chain: environment, profile, web identity, instance role"),
    help: "static key id (with `S3_SECRET_ACCESS_KEY`: both or neither)",
    deprecated: &[],
};

pub const S3_SECRET_ACCESS_KEY: Setting<Text> = Setting {
    name: "S3_SECRET_ACCESS_KEY",
    kind: Text { what: "text" },
    default: Absent("the AWS default chain"),
    help: "static secret key (with `S3_ACCESS_KEY_ID`: both or neither)",
    deprecated: &[],
};

pub const S3_USE_PATH_STYLE: Setting<Flag> = Setting {
    name: "S3_USE_PATH_STYLE",
    kind: Flag,
    default: Value("false"),
    help: "`true`: `endpoint/bucket/key` addressing (MinIO, Garage); else virtual-hosted `bucket.endpoint/key`",
    deprecated: &[],
};

pub const S3_AUTO_CREATE_BUCKET: Setting<Flag> = Setting {
    name: "S3_AUTO_CREATE_BUCKET",
    kind: Flag,
    default: Value("false"),
    help: "create the bucket at start when it is missing",
    deprecated: &[],
};

pub const S3_CA_CERT: Setting<Text> = Setting {
    name: "S3_CA_CERT",
    kind: Text { what: "path" },
    default: Absent("none"),
    help: "PEM file of an extra trusted CA (a self-signed MinIO)",
    deprecated: &[],
};

pub const S3_MAX_RETRIES: Setting<Number> = Setting {
    name: "S3_MAX_RETRIES",
    // More than 100 is read as 100.
    kind: Number::ANY,
    default: Value("3"),
    help: "retries of a retryable failure (500, 502, 503, 504, timeouts, refused or dropped connections)",
    deprecated: &[],
};

pub const S3_RETRY_MAX_BACKOFF: Setting<Number> = Setting {
    name: "S3_RETRY_MAX_BACKOFF",
    kind: Number::at_least(1),
    default: Value("30"),
    help: "seconds; cap of the exponential backoff (100 ms doubling, jittered)",
    deprecated: &[],
};

pub const S3_SLOW_OP_MS: Setting<Number> = Setting {
    name: "S3_SLOW_OP_MS",
    kind: Number::at_least(1),
    default: Value("1000"),
    help: "a call slower than this logs a warning naming the call and its duration",
    deprecated: &[],
};

pub const S3_CONNECT_TIMEOUT_MS: Setting<Number> = Setting {
    name: "S3_CONNECT_TIMEOUT_MS",
    kind: Number::at_least(1),
    default: Value("5000"),
    help: "connect timeout",
    deprecated: &[],
};

pub const S3_READ_TIMEOUT_MS: Setting<Number> = Setting {
    name: "S3_READ_TIMEOUT_MS",
    kind: Number::at_least(1),
    default: Value("60000"),
    help: "time allowed for an answer to start",
    deprecated: &[],
};
