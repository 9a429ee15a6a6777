//! The users file for optional password authentication.

use std::collections::HashMap;
use std::path::Path;

/// Errors reading a users file.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The file could not be read.
    #[error("cannot read users file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not `user:password`.
    #[error("users file {path}, line {line}: expected 'user:password'")]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
    },
    /// No user at all.
    #[error("users file {path} names no user; add lines of the form 'user:password'")]
    Empty {
        /// The file.
        path: String,
    },
}

/// Parses `user:password` lines; blank lines and `#` comments are skipped.
pub fn parse_users(text: &str, path: &str) -> Result<HashMap<String, String>, UsersError> {
    let mut users = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((u, p)) if !u.is_empty() && !p.is_empty() => {
                users.insert(u.to_string(), p.to_string());
            }
            _ => {
                return Err(UsersError::Syntax {
                    path: path.to_string(),
                    line: i + 1,
                })
            }
        }
    }
    if users.is_empty() {
        return Err(UsersError::Empty {
            path: path.to_string(),
        });
    }
    Ok(users)
}

/// Reads and parses a users file.
pub fn read_users(path: &Path) -> Result<HashMap<String, String>, UsersError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| UsersError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_users(&text, &shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_users_and_skips_comments() {
        let u = parse_users("# ops\nada:secret\n\nbob:pa:ss\n", "f").unwrap();
        assert_eq!(u.get("ada").map(String::as_str), Some("secret"));
        assert_eq!(u.get("bob").map(String::as_str), Some("pa:ss"));
    }

    #[test]
    fn names_the_bad_line() {
        let e = parse_users("ada:x\nnopassword\n", "users.txt").unwrap_err();
        assert_eq!(
            e.to_string(),
            "users file users.txt, line 2: expected 'user:password'"
        );
        assert!(parse_users("# nothing\n", "f").is_err());
    }
}
