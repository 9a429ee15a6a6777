//! MQTT logins and the client ids each may use.
//!
//! MQTT lets the newer of two connections with one client id win: whoever
//! connects as `order` knocks the order node off the broker. So with a
//! users file the broker pins every login to its own client ids ([`may_use`]):
//! login `kitchen-1` may connect as `kitchen-1` (its node) or as
//! `kitchen-1~<anything>` (its queries, probes, a keeper it runs), and as
//! nothing else. Clients build their ids with [`client_id`], so they always
//! ask for one their login may use.
//!
//! The ids in topics (`pizza/q/kitchen/credit/kitchen-1`) are node ids, not
//! client ids; a signature, not the connection, says who sent a message.

/// Between a login and the rest of a client id. Login names may not
/// contain it, so no login's ids are a prefix of another's.
pub const SEPARATOR: char = '~';

/// The client id for a connection called `name` of a process logged in as
/// `login`: `name` itself without a login or when it is the login (a node
/// logged in under its own id), `login~name` otherwise.
pub fn client_id(login: Option<&str>, name: &str) -> String {
    match login {
        Some(login) if login != name => format!("{login}{SEPARATOR}{name}"),
        _ => name.to_string(),
    }
}

/// Whether `login` may connect with `client_id`: the login itself, or
/// `login~` followed by anything. (A users file refuses login names with
/// `~`, see [`invalid_login`]; the broker's own `~broker` is one on purpose.)
pub fn may_use(login: &str, client_id: &str) -> bool {
    let under = |id: &str| {
        id.strip_prefix(login)
            .is_some_and(|rest| rest.starts_with(SEPARATOR))
    };
    !login.is_empty() && (client_id == login || under(client_id))
}

/// Why a login name is unusable, if it is: empty, or containing
/// [`SEPARATOR`] (login `a` could then use login `a~b`'s client ids).
pub fn invalid_login(login: &str) -> Option<&'static str> {
    if login.is_empty() {
        Some("a login name may not be empty")
    } else if login.contains(SEPARATOR) {
        Some("a login name may not contain '~' (it separates a login from the rest of a client id)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_uses_its_own_id_and_ids_under_it() {
        assert_eq!(client_id(None, "order"), "order");
        assert_eq!(client_id(Some("order"), "order"), "order");
        assert_eq!(client_id(Some("ada"), "p1"), "ada~p1");
        for (login, name) in [("order", "order"), ("ada", "p1"), ("kitchen-1", "probe-1a2b")] {
            assert!(may_use(login, &client_id(Some(login), name)));
        }
    }

    #[test]
    fn a_login_cannot_take_another_logins_ids() {
        assert!(!may_use("kitchen-1", "order"));
        assert!(!may_use("kitchen-1", "kitchen-10"), "a prefix is not enough");
        assert!(!may_use("kitchen", "kitchen-1"));
        assert!(!may_use("order", "ordera~x"));
        assert!(!may_use("kitchen-1", "~broker~pizza-keeper"));
        assert!(!may_use("", "x"));
    }

    #[test]
    fn login_names_are_checked() {
        assert!(invalid_login("ada").is_none());
        assert!(invalid_login("").is_some());
        assert!(invalid_login("a~b").is_some());
    }
}
