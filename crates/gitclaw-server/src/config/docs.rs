//! The settings as people read them: the `--help` text of `gitclaw serve` and
//! the README's tables, both written from [`SECTIONS`].

use std::fmt::Write;

use super::settings::{Fallback, Listed, Section, SECTIONS};

/// Every setting for `gitclaw serve --help`: its name, what it takes, its default
/// and what it does, section by section.
pub fn help_text() -> String {
    let mut out = String::new();
    wrap(
        &mut out,
        "Settings: environment variables, or the same names in lower case as keys of the \
         --config file (the environment wins).",
        "",
        80,
    );
    for section in SECTIONS {
        let _ = write!(out, "\n{}:\n", section.title);
        for setting in section.settings {
            let default = match setting.default() {
                Fallback::Value(text) => format!("default {text}"),
                Fallback::Absent(text) => format!("default {}", plain(text)),
            };
            let _ = writeln!(
                out,
                "  {} = {}  [{default}]",
                setting.name(),
                plain(&setting.accepts())
            );
            let text = format!("{}{}", setting.help(), former_names(*setting));
            wrap(&mut out, &plain(&text), "      ", 80);
        }
    }
    out
}

/// The README's table of one section: variable, meaning, values, default.
pub fn markdown_table(section: &Section) -> String {
    let mut out = String::from("| variable | meaning | takes | default |\n|---|---|---|---|\n");
    for setting in section.settings {
        let default = match setting.default() {
            Fallback::Value(text) => format!("`{text}`"),
            Fallback::Absent(text) => text.to_string(),
        };
        let _ = writeln!(
            out,
            "| `{}` | {}{} | {} | {default} |",
            setting.name(),
            setting.help(),
            former_names(*setting),
            setting.accepts()
        );
    }
    out
}

/// "; formerly `OLD`, still read with a warning" for a renamed setting.
fn former_names(setting: &dyn Listed) -> String {
    match setting.deprecated() {
        [] => String::new(),
        names => {
            let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("; formerly {}, still read with a warning", names.join(", "))
        }
    }
}

/// Markdown without its code marks, for a terminal.
fn plain(markdown: &str) -> String {
    markdown.replace('`', "")
}

/// `text` as lines of at most `width` columns (longer words stand alone), each
/// after `indent`.
fn wrap(out: &mut String, text: &str, indent: &str, width: usize) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        let columns = indent.chars().count() + line.chars().count() + 1 + word.chars().count();
        if !line.is_empty() && columns > width {
            let _ = writeln!(out, "{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_shows_every_setting_as_listed() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
        let readme = std::fs::read_to_string(path).expect("README.md at the workspace root");
        let stale: Vec<String> = SECTIONS
            .iter()
            .map(|section| (section.title, markdown_table(section)))
            .filter(|(_, table)| !readme.contains(table))
            .map(|(title, table)| format!("{title} settings:\n\n{table}"))
            .collect();
        assert!(
            stale.is_empty(),
            "README.md's settings tables differ from the list in config/settings.rs; \
             replace them with:\n\n{}",
            stale.join("\n")
        );
    }

    #[test]
    fn the_help_names_every_setting_its_default_and_former_names() {
        let help = help_text();
        for setting in super::super::settings::all() {
            assert!(help.contains(setting.name()), "{} missing", setting.name());
        }
        assert!(help.contains("  GITCLAW_LISTEN = IP:PORT  [default 127.0.0.1:8080]\n"));
        assert!(help.contains("GITCLAW_PACK_CACHE_BYTES"), "{help}");
        let too_long = help
            .lines()
            .filter(|l| l.starts_with("      "))
            .find(|l| l.chars().count() > 80 && l.trim().contains(' '));
        assert_eq!(too_long, None, "help lines wrap at 80 columns");
    }

    #[test]
    fn long_help_wraps_at_word_boundaries() {
        let mut out = String::new();
        wrap(&mut out, "aa bb cc dd", "  ", 7);
        assert_eq!(out, "  aa bb\n  cc dd\n");
    }
}
