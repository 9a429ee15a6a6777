//! Bearer tokens on the synchronous path (`contracts::token` has the
//! rules): the ones a node presents, minted with its key and kept until
//! half their life is gone, and the [`Gate`] that checks the ones a service
//! receives.
//!
//! Like the rest of the trust, both or neither: a node without a key mints
//! nothing, and a service without a trust file lets every call through
//! (that is the unsigned platform of hand-run nodes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use broker::trust::TrustStore;
use contracts::token::{now_s, TokenError, LIFETIME_S};

use crate::runtime::http::ApiError;
use crate::runtime::security::Security;

/// Minted tokens by (audience, scope), with when each was issued.
type Minted = HashMap<(&'static str, &'static str), (String, u64)>;

/// The tokens a node presents, one per (audience, scope).
#[derive(Clone, Default)]
pub struct Tokens {
    security: Security,
    /// Minted tokens and when each was issued. A Mutex: held for a lookup
    /// or an insert, never across a signature or an await.
    minted: Arc<Mutex<Minted>>,
}

impl Tokens {
    /// The tokens of the node whose key is in `security`.
    pub fn new(security: Security) -> Tokens {
        Tokens {
            security,
            minted: Default::default(),
        }
    }

    /// The `Authorization` header's value for a call to a service of role
    /// `audience` that needs `scope`; `None` on a node without a key.
    pub fn bearer(&self, audience: &'static str, scope: &'static str) -> Option<String> {
        let signer = self.security.signer.as_ref()?;
        let now = now_s();
        let lock = || self.minted.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((token, issued)) = lock().get(&(audience, scope)) {
            if now < issued + LIFETIME_S / 2 {
                return Some(format!("Bearer {token}"));
            }
        }
        match signer.token(audience, scope, now) {
            Ok(token) => {
                lock().insert((audience, scope), (token.clone(), now));
                Some(format!("Bearer {token}"))
            }
            Err(e) => {
                // The call goes out without one and is refused with a 401
                // that says so; this line says why.
                tracing::error!(error = %e, audience, scope, "cannot mint a bearer token");
                None
            }
        }
    }

    /// `request` with this node's token for `audience` and `scope`, if it
    /// has a key.
    pub fn attach(
        &self,
        request: reqwest::RequestBuilder,
        audience: &'static str,
        scope: &'static str,
    ) -> reqwest::RequestBuilder {
        match self.bearer(audience, scope) {
            Some(bearer) => request.header(AUTHORIZATION, bearer),
            None => request,
        }
    }
}

/// Checks the bearer token of calls to one service's protected routes:
/// an axum middleware ([`require`]) on those routes.
#[derive(Clone)]
pub struct Gate {
    trust: Option<Arc<TrustStore>>,
    audience: &'static str,
    scope: &'static str,
    /// The last token let through, with its expiry. A caller presents one
    /// token until half its life is gone, so this spares an Ed25519 check
    /// per call; a token once good stays good until it expires (a re-keyed
    /// caller's old one too, at most [`LIFETIME_S`]). A Mutex: held for a
    /// string compare.
    passed: Arc<Mutex<Option<(String, u64)>>>,
}

impl Gate {
    /// Calls to a service of role `audience` need a token with `scope`,
    /// checked against the trust file in `security` (none: no check).
    pub fn new(security: &Security, audience: &'static str, scope: &'static str) -> Gate {
        Gate {
            trust: security.trust.clone(),
            audience,
            scope,
            passed: Arc::default(),
        }
    }

    /// Whether `headers` carry a token this gate lets through.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), TokenError> {
        let Some(trust) = &self.trust else { return Ok(()) };
        let token = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(TokenError::Missing)?;
        let token = token.trim();
        let passed =
            |p: &Option<(String, u64)>| p.as_ref().is_some_and(|(t, exp)| t == token && now_s() < *exp);
        if passed(&self.passed.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(());
        }
        let claims = trust.check_token(token, self.audience, self.scope)?;
        *self.passed.lock().unwrap_or_else(|e| e.into_inner()) = Some((token.to_string(), claims.exp));
        Ok(())
    }
}

/// The middleware: a request without a token [`Gate::check`] accepts is
/// answered 401 (no usable token) or 403 (a token without the scope) with
/// the JSON error body, and never reaches the handler.
pub async fn require(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    match gate.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(why) => {
            tracing::warn!(path = %request.uri().path(), reason = %why, "security: a call without a valid bearer token was refused; nothing changed");
            ApiError::from(why).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use contracts::token::scope;
    use contracts::trust::role;

    fn headers(bearer: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(bearer).expect("ascii"));
        h
    }

    #[test]
    fn a_gate_lets_a_token_through_again_and_still_refuses_any_other() {
        let dir = tempfile::tempdir().expect("temp dir");
        let trust = dir.path().join("trust.json");
        let node = |id: &str, role_name: &str| {
            let key = broker::trust::make_key(dir.path(), id, contracts::trust::role_for(role_name), &trust)
                .expect("key");
            Security::load(Some(&key), Some(&trust), id, role_name).expect("security")
        };
        let (order, payment, kitchen) = (
            node("order", "order"),
            node("payment", "payment"),
            node("kitchen-1", "kitchen"),
        );
        let gate = Gate::new(&payment, role::PAYMENT, scope::PAYMENT);
        let good = Tokens::new(order)
            .bearer(role::PAYMENT, scope::PAYMENT)
            .expect("a token");
        assert_eq!(gate.check(&headers(&good)), Ok(()));
        assert_eq!(gate.check(&headers(&good)), Ok(()), "the same token, remembered");
        // Another caller's token, or the good one changed, is checked in full.
        let kitchens = Tokens::new(kitchen)
            .bearer(role::PAYMENT, scope::PAYMENT)
            .expect("a token");
        assert!(matches!(
            gate.check(&headers(&kitchens)),
            Err(TokenError::Forbidden { .. })
        ));
        let changed = format!("{}x", good);
        assert!(gate.check(&headers(&changed)).is_err());
        assert_eq!(gate.check(&headers("Bearer")), Err(TokenError::Missing));
        assert_eq!(gate.check(&headers(&good)), Ok(()));
    }
}
