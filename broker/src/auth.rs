//! Optional password authentication: the users file, and who may connect
//! with which client id.
//!
//! A login may connect only with its own client ids
//! (`contracts::login::may_use`), so no login can knock another node off
//! the broker by taking its id. The broker's own keeper and event log log
//! in as [`INTERNAL`] with a password made up at start and never written
//! anywhere; no users-file login can be it (`~` is not allowed in one).

use std::collections::HashMap;
use std::path::Path;

use contracts::login;

/// The login of the broker's own keeper and event log.
pub const INTERNAL: &str = "~broker";

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
    /// A login name that cannot be one.
    #[error("users file {path}, line {line}: {reason}")]
    Login {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: &'static str,
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
                if let Some(reason) = login::invalid_login(u) {
                    return Err(UsersError::Login {
                        path: path.to_string(),
                        line: i + 1,
                        reason,
                    });
                }
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

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The users file has no such login.
    #[error("no login {0}")]
    UnknownLogin(String),
    /// The password does not match.
    #[error("wrong password for {0}")]
    WrongPassword(String),
    /// The login asked for a client id that is not its own.
    #[error("login {login} may not connect as client id {client_id}: its ids are {login} and {login}~…")]
    NotItsClientId {
        /// The login.
        login: String,
        /// The client id it asked for.
        client_id: String,
    },
}

/// Everyone who may connect: the users file and the broker's own login.
#[derive(Debug, Clone)]
pub struct Logins {
    users: HashMap<String, String>,
    internal: String,
}

impl Logins {
    /// The users file's logins, and a fresh random password for
    /// [`INTERNAL`].
    pub fn new(users: HashMap<String, String>) -> Logins {
        use rand::Rng;
        let secret: [u8; 32] = rand::thread_rng().gen();
        Logins {
            users,
            internal: secret.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// The broker's own credentials, for its keeper and event log.
    pub fn internal(&self) -> (String, String) {
        (INTERNAL.to_string(), self.internal.clone())
    }

    /// Whether `login` with `password` may connect as `client_id`.
    pub fn admit(&self, client_id: &str, login: &str, password: &str) -> Result<(), Denied> {
        let stored = if login == INTERNAL {
            &self.internal
        } else {
            self.users
                .get(login)
                .ok_or_else(|| Denied::UnknownLogin(login.to_string()))?
        };
        if !same(stored.as_bytes(), password.as_bytes()) {
            return Err(Denied::WrongPassword(login.to_string()));
        }
        if !login::may_use(login, client_id) {
            return Err(Denied::NotItsClientId {
                login: login.to_string(),
                client_id: client_id.to_string(),
            });
        }
        Ok(())
    }
}

/// Compares in time independent of where the bytes first differ, so that a
/// guesser learns nothing from how fast a wrong password is refused.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
        let e = parse_users("a~b:x\n", "users.txt").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn a_login_connects_only_with_its_password_and_its_own_client_ids() {
        let logins = Logins::new(parse_users("order:o\nkitchen-1:k\n", "f").unwrap());
        assert_eq!(logins.admit("order", "order", "o"), Ok(()));
        assert_eq!(logins.admit("kitchen-1~probe-1", "kitchen-1", "k"), Ok(()));
        assert_eq!(
            logins.admit("order", "kitchen-1", "k"),
            Err(Denied::NotItsClientId {
                login: "kitchen-1".into(),
                client_id: "order".into()
            })
        );
        assert_eq!(
            logins.admit("order", "order", "k"),
            Err(Denied::WrongPassword("order".into()))
        );
        assert_eq!(logins.admit("x", "x", "x"), Err(Denied::UnknownLogin("x".into())));
        let (user, password) = logins.internal();
        assert_eq!(logins.admit("~broker~pizza-keeper", &user, &password), Ok(()));
        assert!(logins.admit("~broker~pizza-keeper", &user, "guess").is_err());
        assert_ne!(
            Logins::new(HashMap::new()).internal().1,
            password,
            "made up per start"
        );
    }
}
