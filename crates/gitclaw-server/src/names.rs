//! Owner and repository names: one safe alphabet for the API and git URLs alike.

/// The longest owner or repository name.
pub const MAX_NAME_LEN: usize = 100;

/// Check an owner or repository name; the error says what is wrong.
pub fn validate_name(kind: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{kind} name must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "{kind} name is longer than {MAX_NAME_LEN} characters"
        ));
    }
    if name.starts_with('.') {
        return Err(format!("{kind} name must not start with '.'"));
    }
    if name.contains("..") {
        return Err(format!("{kind} name must not contain '..'"));
    }
    if name.to_ascii_lowercase().ends_with(".git") {
        return Err(format!("{kind} name must not end with '.git'"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "{kind} name contains '{}': use letters, digits, '-', '_' and '.'",
            bad.escape_default()
        ));
    }
    Ok(())
}

/// Split the `{repo}` segment of a git URL, which may end in `.git`.
pub fn strip_git_suffix(segment: &str) -> &str {
    segment.strip_suffix(".git").unwrap_or(segment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_pass() {
        for name in ["gitclaw", "my-repo", "a_b.c", "X1"] {
            assert_eq!(validate_name("repository", name), Ok(()), "{name}");
        }
    }

    #[test]
    fn path_tricks_and_control_characters_fail() {
        for name in [
            "",
            ".hidden",
            "a..b",
            "..",
            "a/b",
            "a\\b",
            "a\nb",
            "a\u{0}b",
            "é",
            "x.git",
            &"a".repeat(101),
        ] {
            assert!(
                validate_name("repository", name).is_err(),
                "{name:?} must be refused"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn accepted_names_are_safe_path_segments(name in "\\PC{0,120}") {
            if validate_name("repository", &name).is_ok() {
                proptest::prop_assert!(!name.contains('/') && !name.contains("..") && !name.starts_with('.'));
                proptest::prop_assert!(name.chars().all(|c| c.is_ascii_graphic()));
            }
        }
    }
}
