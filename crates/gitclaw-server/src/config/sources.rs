//! Where a setting's text comes from: the environment over the configuration
//! file, a setting's current name over its former ones. Reading a setting
//! records each problem naming the variable it was given under, and a warning
//! for each former name in use.

use std::{collections::HashMap, path::Path};

use super::{
    kinds::Kind,
    settings::{self, Setting},
    ConfigError,
};

/// The environment and the file, and what reading them found wrong.
pub(super) struct Sources<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    /// The file's values, keyed by upper-case variable name.
    file: HashMap<String, String>,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<String>,
    /// Every setting read, to check that each listed setting is.
    #[cfg(test)]
    pub read: Vec<&'static str>,
}

impl<'a> Sources<'a> {
    /// The environment (`env`) over the TOML file at `file`, when given; the file's
    /// problems are recorded naming `GITCLAW_CONFIG`.
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>, file: Option<&Path>) -> Sources<'a> {
        let mut errors = Vec::new();
        let file = file
            .map(|path| read_file(path, &mut errors))
            .unwrap_or_default();
        Sources {
            env,
            file,
            errors,
            warnings: Vec::new(),
            #[cfg(test)]
            read: Vec::new(),
        }
    }

    /// The text set for `name`: the environment's unless empty, else the file's.
    fn lookup(&self, name: &str) -> Option<String> {
        (self.env)(name)
            .filter(|v| !v.is_empty())
            .or_else(|| self.file.get(name).cloned())
    }

    /// Whether anything sets the variable `name`.
    pub fn is_set(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }

    /// The text given for `setting` and the name it was given under: its current
    /// name wherever set, else its first former name set. Each former name in use
    /// adds a warning naming the current one.
    fn given<K>(&mut self, setting: &Setting<K>) -> Option<(&'static str, String)> {
        #[cfg(test)]
        self.read.push(setting.name);
        let current = self.lookup(setting.name);
        let mut former = None;
        for &old in setting.deprecated {
            let Some(text) = self.lookup(old) else {
                continue;
            };
            let new = setting.name;
            self.warnings.push(if current.is_some() {
                format!("{old} is deprecated and ignored: {new} is set; remove {old}")
            } else {
                format!("{old} is deprecated: rename it to {new} (same meaning)")
            });
            former = former.or(Some((old, text)));
        }
        current.map(|text| (setting.name, text)).or(former)
    }

    /// The value given for `setting`: `None` when nothing sets it, or when its text
    /// is refused (recorded as a problem naming the variable).
    pub fn optional<K: Kind>(&mut self, setting: &Setting<K>) -> Option<K::Value> {
        let (name, text) = self.given(setting)?;
        match setting.kind.parse(&text) {
            Ok(value) => Some(value),
            Err(message) => {
                self.problem(name, message);
                None
            }
        }
    }

    /// The value given for `setting`, else its listed default (also when the
    /// given text is refused, so that reading goes on to find other problems).
    ///
    /// Panics when the setting lists no default value (read those with `optional`).
    pub fn value<K: Kind>(&mut self, setting: &Setting<K>) -> K::Value {
        self.optional(setting).unwrap_or_else(|| {
            setting
                .default_value()
                .unwrap_or_else(|| panic!("{} lists no default value", setting.name))
        })
    }

    /// Record a problem with `variable`.
    pub fn problem(&mut self, variable: &'static str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            variable,
            message: message.into(),
        });
    }
}

/// Values from a TOML file, keyed by upper-case variable name; a key that is no
/// setting's name (current or former) is a problem.
fn read_file(path: &Path, errors: &mut Vec<ConfigError>) -> HashMap<String, String> {
    let mut values = HashMap::new();
    let mut problem = |message: String| {
        errors.push(ConfigError {
            variable: "GITCLAW_CONFIG",
            message,
        })
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => {
            problem(format!("cannot read {}: {err}", path.display()));
            return values;
        }
    };
    let table = match text.parse::<toml::Table>() {
        Ok(table) => table,
        Err(err) => {
            problem(format!("{}: {}", path.display(), err.message()));
            return values;
        }
    };
    for (key, value) in table {
        let name = key.to_ascii_uppercase();
        if !settings::is_known(&name) {
            problem(format!("{}: unknown setting '{key}'", path.display()));
            continue;
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                problem(format!(
                    "{}: '{key}' must be a string, number or boolean, not {}",
                    path.display(),
                    other.type_str()
                ));
                continue;
            }
        };
        values.insert(name, text);
    }
    values
}
