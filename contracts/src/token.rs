//! Machine-to-machine tokens on the synchronous path: a short-lived JWT
//! (EdDSA) sent as `Authorization: Bearer`.
//!
//! OAuth 2.0's client credentials in the form of RFC 7523's JWT assertion:
//! the calling node is its own issuer and signs the token with the key it
//! signs its messages with, so no token service has to run (and be killed)
//! for a payment to go through. The receiver checks the signature against
//! the trust file (`kid` and `iss` name the caller), the audience (the
//! receiving service's role), the expiry, and that the caller's role may
//! hold the scope it claims ([`may_hold`]): a kitchen can mint itself a
//! token, but not one that payment or delivery accept.
//!
//! Pure apart from the clock that `jsonwebtoken` reads for `exp`.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::trust::{role, Signer, Trust};

/// The scopes, one per protected call.
pub mod scope {
    /// `POST /pay` and `POST /refund` on payment.
    pub const PAYMENT: &str = "payment";
    /// `DELETE /orders/{id}` on the order service.
    pub const CANCEL: &str = "orders:cancel";
    /// `POST /recall/{order_id}` on delivery.
    pub const RECALL: &str = "deliveries:recall";
}

/// How long a minted token is good for. Short, so a stolen one is soon
/// useless; callers mint a new one before it runs out ([`Claims::exp`]).
pub const LIFETIME_S: u64 = 300;

/// Seconds of clock difference between two hosts that still pass.
const LEEWAY_S: u64 = 5;

/// A token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The node that signed it (also the header's `kid`).
    pub iss: String,
    /// The caller: the same node.
    pub sub: String,
    /// The role of the service it is for (`payment`, `order`, `delivery`).
    pub aud: String,
    /// What it allows ([`scope`]), space-separated as in OAuth.
    pub scope: String,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
}

/// May a node of `role` hold `scope`? The order service pays, refunds and
/// recalls drivers for its sagas; the control room (the operator, a
/// scenario) cancels orders.
pub fn may_hold(role: &str, scope: &str) -> bool {
    match scope {
        scope::PAYMENT | scope::RECALL => role == role::ORDER,
        scope::CANCEL => role == role::CONTROL,
        _ => false,
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token: send `Authorization: Bearer <JWT>` (mint one with `pizza-node token`)")]
    Missing,
    /// Not a JWT we can read, or its header names no known node.
    #[error("the bearer token is not usable: {0}")]
    Malformed(String),
    /// Signed by no node of the trust file.
    #[error("the bearer token's issuer '{0}' is not in the trust file")]
    UnknownIssuer(String),
    /// Bad signature, expired, or for another audience.
    #[error("the bearer token was refused: {0}")]
    Invalid(String),
    /// Valid, but its issuer may not hold the scope this call needs, or it
    /// does not claim it.
    #[error("the bearer token does not allow '{scope}' ({reason})")]
    Forbidden {
        /// The scope the call needs.
        scope: String,
        /// What was missing.
        reason: String,
    },
}

impl TokenError {
    /// Whether this is 403 (a valid token without the scope) rather than
    /// 401 (no usable token).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, TokenError::Forbidden { .. })
    }
}

/// The seconds since the epoch now.
pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Signer {
    /// A token for `audience` allowing `scope`, issued at `iat` (seconds),
    /// good for [`LIFETIME_S`].
    pub fn token(&self, audience: &str, scope: &str, iat: u64) -> Result<String, TokenError> {
        let claims = Claims {
            iss: self.id().to_string(),
            sub: self.id().to_string(),
            aud: audience.to_string(),
            scope: scope.to_string(),
            iat,
            exp: iat + LIFETIME_S,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.id().to_string());
        let der = self.pkcs8_der().map_err(TokenError::Malformed)?;
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&der))
            .map_err(|e| TokenError::Malformed(e.to_string()))
    }
}

/// Checks `token` for a call to a service of role `audience` that needs
/// `scope`; returns its claims.
pub fn verify(trust: &Trust, token: &str, audience: &str, scope: &str) -> Result<Claims, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
    let issuer = header
        .kid
        .ok_or_else(|| TokenError::Malformed("its header has no kid (the issuing node's id)".into()))?;
    let (role, key) = trust
        .public_key(&issuer)
        .ok_or_else(|| TokenError::UnknownIssuer(issuer.clone()))?;
    let mut rules = Validation::new(Algorithm::EdDSA);
    rules.set_audience(&[audience]);
    rules.set_issuer(&[issuer.as_str()]);
    rules.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    rules.leeway = LEEWAY_S;
    let claims = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_ed_der(&key), &rules)
        .map_err(|e| TokenError::Invalid(e.to_string()))?
        .claims;
    let forbidden = |reason: String| TokenError::Forbidden {
        scope: scope.to_string(),
        reason,
    };
    if claims.sub != claims.iss {
        return Err(forbidden(format!(
            "it was issued by '{}' for '{}'",
            claims.iss, claims.sub
        )));
    }
    if !claims.scope.split(' ').any(|s| s == scope) {
        return Err(forbidden(format!("it claims only '{}'", claims.scope)));
    }
    if !may_hold(role, scope) {
        return Err(forbidden(format!("a node of role {role} may not hold it")));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::tests::trust;

    fn node(id: &str, seed: u8) -> Signer {
        Signer::from_seed(id, [seed; 32])
    }

    #[test]
    fn the_order_node_token_passes_payment() {
        let order = node("order", 1);
        let t = trust(&[(&order, role::ORDER)]);
        let token = order.token("payment", scope::PAYMENT, now_s()).unwrap();
        let claims = verify(&t, &token, "payment", scope::PAYMENT).unwrap();
        assert_eq!((claims.iss.as_str(), claims.aud.as_str()), ("order", "payment"));
        assert_eq!(claims.exp - claims.iat, LIFETIME_S);
    }

    #[test]
    fn expired_wrong_audience_wrong_key_and_unknown_issuer_are_refused() {
        let order = node("order", 1);
        let t = trust(&[(&order, role::ORDER)]);
        let old = order
            .token("payment", scope::PAYMENT, now_s() - LIFETIME_S - 60)
            .unwrap();
        assert!(matches!(
            verify(&t, &old, "payment", scope::PAYMENT),
            Err(TokenError::Invalid(_))
        ));
        let elsewhere = order.token("delivery", scope::PAYMENT, now_s()).unwrap();
        assert!(matches!(
            verify(&t, &elsewhere, "payment", scope::PAYMENT),
            Err(TokenError::Invalid(_))
        ));
        // Same id, another key: the trust file's key decides.
        let impostor = node("order", 2)
            .token("payment", scope::PAYMENT, now_s())
            .unwrap();
        assert!(matches!(
            verify(&t, &impostor, "payment", scope::PAYMENT),
            Err(TokenError::Invalid(_))
        ));
        let stranger = node("mallory", 3)
            .token("payment", scope::PAYMENT, now_s())
            .unwrap();
        assert_eq!(
            verify(&t, &stranger, "payment", scope::PAYMENT),
            Err(TokenError::UnknownIssuer("mallory".into()))
        );
        assert!(matches!(
            verify(&t, "not.a.jwt", "payment", scope::PAYMENT),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn a_role_cannot_mint_itself_a_scope_it_may_not_hold() {
        let kitchen = node("kitchen-1", 4);
        let control = node("control-room", 5);
        let t = trust(&[(&kitchen, role::KITCHEN), (&control, role::CONTROL)]);
        let token = kitchen.token("payment", scope::PAYMENT, now_s()).unwrap();
        let refused = verify(&t, &token, "payment", scope::PAYMENT).unwrap_err();
        assert!(refused.is_forbidden(), "{refused}");
        // The right role with the wrong scope claimed.
        let token = control.token("order", scope::RECALL, now_s()).unwrap();
        assert!(verify(&t, &token, "order", scope::CANCEL)
            .unwrap_err()
            .is_forbidden());
        let token = control.token("order", scope::CANCEL, now_s()).unwrap();
        assert!(verify(&t, &token, "order", scope::CANCEL).is_ok());
    }
}
