//! What a load run does: the scenarios and their weights, how many at once, for
//! how long, against which URL, and how hard each answer is checked.

use std::{path::PathBuf, str::FromStr, time::Duration};

/// One kind of scenario run: what one "request" of the report is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scenario {
    /// `git ls-remote`: the v2 capability advertisement and `ls-refs`.
    LsRefs,
    /// A clone: every branch and tag, whole history.
    Full,
    /// `git clone --depth 1`: the default branch's tip alone.
    Shallow,
    /// `git clone --filter=blob:none`: every branch and tag, no blobs.
    BlobNone,
    /// A fetch by a client some commits behind on the default branch.
    Incremental,
    /// `git fetch --depth 1 origin <sha>` of a commit that is no ref's tip, as CI
    /// checkouts do.
    BySha,
    /// A push of one new commit to a new branch (protocol v0 receive-pack).
    Push,
}

impl Scenario {
    pub const ALL: [Scenario; 7] = [
        Scenario::LsRefs,
        Scenario::Full,
        Scenario::Shallow,
        Scenario::BlobNone,
        Scenario::Incremental,
        Scenario::BySha,
        Scenario::Push,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::LsRefs => "ls-refs",
            Scenario::Full => "full",
            Scenario::Shallow => "shallow",
            Scenario::BlobNone => "blob-none",
            Scenario::Incremental => "incremental",
            Scenario::BySha => "by-sha",
            Scenario::Push => "push",
        }
    }

    /// True for the scenarios that receive a pack.
    pub fn fetches(self) -> bool {
        !matches!(self, Scenario::LsRefs | Scenario::Push)
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Scenario::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                let names: Vec<_> = Scenario::ALL.iter().map(|s| s.name()).collect();
                format!("unknown scenario `{name}` (known: {})", names.join(", "))
            })
    }
}

/// Scenarios with their weights: each gets that share of the runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    entries: Vec<(Scenario, u32)>,
    total: u32,
}

impl Mix {
    /// The scenarios with a weight above zero, in the order given.
    pub fn entries(&self) -> &[(Scenario, u32)] {
        &self.entries
    }

    pub fn contains(&self, scenario: Scenario) -> bool {
        self.entries.iter().any(|(s, _)| *s == scenario)
    }

    /// Every scenario as many times as its weight (weights divided by their
    /// greatest common divisor): dealt in a shuffled order, deck after deck,
    /// it gives each scenario exactly its share, and every scenario a turn
    /// within each deck.
    pub fn deck(&self) -> Vec<Scenario> {
        let divisor = self.entries.iter().fold(0, |d, (_, w)| gcd(d, *w)).max(1);
        self.entries
            .iter()
            .flat_map(|&(scenario, weight)| {
                std::iter::repeat_n(scenario, (weight / divisor) as usize)
            })
            .collect()
    }

    /// Sum of the weights.
    pub fn total(&self) -> u32 {
        self.total
    }
}

/// Largest weight of one scenario (it bounds the deck of [`Mix::deck`]).
const MAX_WEIGHT: u32 = 10_000;

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl FromStr for Mix {
    type Err = String;

    /// `shallow=8,full=1,ls-refs=4`; a name alone weighs 1.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut entries: Vec<(Scenario, u32)> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = match part.split_once('=') {
                Some((name, weight)) => {
                    let weight = weight.trim().parse::<u32>().map_err(|_| {
                        format!(
                            "weight of `{}` is not a whole number: `{weight}`",
                            name.trim()
                        )
                    })?;
                    (name.trim(), weight)
                }
                None => (part, 1),
            };
            let scenario: Scenario = name.parse()?;
            if entries.iter().any(|(s, _)| *s == scenario) {
                return Err(format!("`{name}` appears twice in the mix"));
            }
            if weight > MAX_WEIGHT {
                return Err(format!("weight of `{name}` is above {MAX_WEIGHT}"));
            }
            if weight > 0 {
                entries.push((scenario, weight));
            }
        }
        let total = entries.iter().map(|(_, w)| w).sum();
        if total == 0 {
            return Err("the mix has no scenario with a weight above 0".into());
        }
        Ok(Mix { entries, total })
    }
}

/// How hard every received pack is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verify {
    /// Index the whole pack as `git index-pack` would: every entry inflates,
    /// every delta resolves, every object is hashed and parsed, the trailer
    /// matches; then the shape's own checks (wanted commits present, object
    /// count as before, no blobs in a `blob:none` answer, …).
    #[default]
    Full,
    /// Header, object count and trailer checksum only: cheap enough that the
    /// harness takes little of the CPU it shares with a server on one machine.
    Light,
}

impl FromStr for Verify {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "full" => Ok(Verify::Full),
            "light" => Ok(Verify::Light),
            other => Err(format!("unknown verification `{other}` (full or light)")),
        }
    }
}

/// When the run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// No new scenario starts after this long (runs under way finish).
    After(Duration),
    /// This many scenario runs in all, over every worker.
    Runs(u64),
}

/// Credentials sent as HTTP Basic on every request.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"…")
            .finish()
    }
}

/// Everything a load run needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The repository: `http(s)://host[:port]/path/repo.git` (credentials in the
    /// URL are used when [`Config::credentials`] is `None`).
    pub url: String,
    pub mix: Mix,
    /// Scenario runs under way at once.
    pub concurrency: usize,
    pub stop: Stop,
    /// Longest a scenario run may take, all of its requests together.
    pub timeout: Duration,
    pub credentials: Option<Credentials>,
    pub verify: Verify,
    /// How many commits behind its tip the incremental fetcher is, and how far
    /// back from the tip the by-sha commit lies.
    pub behind: u32,
    /// Size of the random file each push commits.
    pub push_bytes: usize,
    /// Branches pushed are `refs/heads/<push_prefix><run>-<worker>-<n>`.
    pub push_prefix: String,
    /// Delete the pushed branches when the run ends.
    pub cleanup: bool,
    /// Where received packs are indexed (default: the system's temporary directory).
    pub tmp_dir: Option<PathBuf>,
    /// Print a progress line to standard error every few seconds.
    pub progress: bool,
}

impl Config {
    /// A configuration with the defaults of the command line.
    pub fn new(url: impl Into<String>, mix: Mix) -> Config {
        Config {
            url: url.into(),
            mix,
            concurrency: 8,
            stop: Stop::After(Duration::from_secs(30)),
            timeout: Duration::from_secs(60),
            credentials: None,
            verify: Verify::Full,
            behind: 10,
            push_bytes: 1024,
            push_prefix: "load/".into(),
            cleanup: false,
            tmp_dir: None,
            progress: false,
        }
    }
}

/// `30s`, `2m`, `500ms`, `1h`, or bare seconds (`45`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (like 30s, 2m, 500ms)"))?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit `{other}` in `{text}` (ms, s, m, h)")),
    };
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 366.0 * 86400.0 {
        return Err(format!("`{text}` is not a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_keeps_its_weights_in_order() {
        let mix: Mix = "shallow=8, full=1,ls-refs=4,push".parse().unwrap();
        assert_eq!(
            mix.entries(),
            &[
                (Scenario::Shallow, 8),
                (Scenario::Full, 1),
                (Scenario::LsRefs, 4),
                (Scenario::Push, 1)
            ]
        );
        assert_eq!(mix.total(), 14);
        assert!(mix.contains(Scenario::Push));
        assert!(!mix.contains(Scenario::BySha));
    }

    #[test]
    fn a_deck_holds_each_scenario_as_often_as_its_weight_in_lowest_terms() {
        let mix: Mix = "shallow=6,full=2,push=4".parse().unwrap();
        assert_eq!(
            mix.deck(),
            vec![
                Scenario::Shallow,
                Scenario::Shallow,
                Scenario::Shallow,
                Scenario::Full,
                Scenario::Push,
                Scenario::Push
            ]
        );
        let mix: Mix = "by-sha=10000,ls-refs=9999".parse().unwrap();
        assert_eq!(mix.deck().len(), 19_999);
        assert!("full=10001".parse::<Mix>().is_err());
    }

    #[test]
    fn a_zero_weight_leaves_the_scenario_out() {
        let mix: Mix = "full=0,by-sha=2".parse().unwrap();
        assert_eq!(mix.entries(), &[(Scenario::BySha, 2)]);
        assert_eq!(mix.deck(), vec![Scenario::BySha]);
    }

    #[test]
    fn bad_mixes_are_refused_with_a_reason() {
        for (text, reason) in [
            ("clone=1", "unknown scenario `clone`"),
            ("full=x", "not a whole number"),
            ("full=-1", "not a whole number"),
            ("full=1,full=2", "appears twice"),
            ("full=0", "no scenario"),
            ("", "no scenario"),
        ] {
            let err = text.parse::<Mix>().unwrap_err();
            assert!(err.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("s").is_err());
    }
}
