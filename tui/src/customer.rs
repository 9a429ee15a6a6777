//! Places orders the way a customer does: `POST /orders` on the order
//! service, with a random pizza from the menu.

use std::collections::BTreeMap;
use std::time::Duration;

use contracts::api::{Customer, ErrorBody, Item, PlaceOrder};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::Deserialize;

use crate::msg::PlaceOutcome;

/// The menu, compiled in like the nodes' own copy.
const MENU: &str = include_str!("../../assets/menu.toml");
/// The stock, for the names of ingredients a kitchen can run out of.
const STOCK: &str = include_str!("../../assets/stock.toml");

const NAMES: &[&str] = &[
    "Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken",
];
const STREETS: &[&str] = &["Loop St", "Queue Ave", "Broker Rd", "Saga Way", "Retry Lane"];

/// Orders sent at once in a burst.
const PARALLEL: usize = 8;

#[derive(Deserialize)]
struct Menu {
    pizza: Vec<Pizza>,
}

#[derive(Deserialize)]
struct Pizza {
    name: String,
}

#[derive(Deserialize)]
struct Stock {
    stock: BTreeMap<String, u64>,
}

/// Pizza names on the menu.
pub fn pizzas() -> Vec<String> {
    toml::from_str::<Menu>(MENU)
        .map(|m| m.pizza.into_iter().map(|p| p.name).collect())
        .unwrap_or_default()
}

/// Ingredient names in the stock, the ones most pizzas use first.
pub fn ingredients() -> Vec<String> {
    let Ok(stock) = toml::from_str::<Stock>(STOCK) else {
        return Vec::new();
    };
    let mut names: Vec<(u64, String)> = stock.stock.into_iter().map(|(k, v)| (v, k)).collect();
    names.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    names.into_iter().map(|(_, k)| k).collect()
}

/// A plausible order.
pub fn random_order(rng: &mut impl Rng, pizzas: &[String]) -> PlaceOrder {
    let name = NAMES.choose(rng).copied().unwrap_or("Ada");
    let street = STREETS.choose(rng).copied().unwrap_or("Loop St");
    let pizza = pizzas.choose(rng).cloned().unwrap_or_else(|| "margherita".into());
    PlaceOrder {
        customer: Customer {
            name: name.to_string(),
            address: format!("{} {street}", rng.gen_range(1..200)),
        },
        items: vec![Item {
            pizza,
            qty: rng.gen_range(1..=2),
        }],
    }
}

/// Sends `request`, a `DELETE /orders/{id}` (with the operator's bearer
/// token on a signed platform): `Ok` on 202, else the service's own
/// message.
pub async fn cancel(request: reqwest::RequestBuilder) -> Result<(), String> {
    let answer = request
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| format!("the order service did not answer: {e}"))?;
    let status = answer.status();
    if status == reqwest::StatusCode::ACCEPTED {
        return Ok(());
    }
    match answer.json::<ErrorBody>().await {
        Ok(body) => Err(format!("{} {}", status.as_u16(), body.error.message)),
        Err(_) => Err(format!("the order service answered {status}")),
    }
}

/// Posts `count` random orders to `base_url` and reports how it went.
pub async fn place(client: &reqwest::Client, base_url: &str, count: u32) -> PlaceOutcome {
    let pizzas = pizzas();
    let url = format!("{}/orders", base_url.trim_end_matches('/'));
    let mut outcome = PlaceOutcome {
        requested: count,
        ..Default::default()
    };
    let mut left = count as usize;
    while left > 0 {
        let n = left.min(PARALLEL);
        left -= n;
        let bodies: Vec<PlaceOrder> = {
            let mut rng = rand::thread_rng();
            (0..n).map(|_| random_order(&mut rng, &pizzas)).collect()
        };
        let mut sends = tokio::task::JoinSet::new();
        for body in bodies {
            let (client, url) = (client.clone(), url.clone());
            sends.spawn(async move { post(&client, &url, &body).await });
        }
        while let Some(joined) = sends.join_next().await {
            let result = joined.unwrap_or_else(|e| Err(("not sent".into(), e.to_string())));
            match result {
                Ok(id) => outcome.accepted.push(id),
                Err((key, message)) => {
                    *outcome.refused.entry(key).or_default() += 1;
                    outcome.first_error.get_or_insert(message);
                }
            }
        }
    }
    outcome
}

/// One POST: the order id, or ("503 payment_unavailable", message).
async fn post(client: &reqwest::Client, url: &str, body: &PlaceOrder) -> Result<String, (String, String)> {
    let resp = client
        .post(url)
        .timeout(Duration::from_secs(10))
        .json(body)
        .send()
        .await
        .map_err(|e| ("no answer".to_string(), e.to_string()))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if status.is_success() {
        let id = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("order_id").and_then(|i| i.as_str()).map(str::to_string))
            .unwrap_or_default();
        return Ok(id);
    }
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(e) => Err((format!("{} {}", status.as_u16(), e.error.code), e.error.message)),
        Err(_) => Err((status.as_u16().to_string(), text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_orders_are_valid_and_use_the_menu() {
        let pizzas = pizzas();
        assert!(pizzas.contains(&"margherita".to_string()));
        let mut rng = rand::thread_rng();
        for _ in 0..50 {
            let o = random_order(&mut rng, &pizzas);
            assert!(o.validate(|p| pizzas.iter().any(|x| x == p)).is_ok(), "{o:?}");
            assert!(pizzas.contains(&o.items[0].pizza));
        }
        let ingredients = ingredients();
        assert_eq!(ingredients.first().map(String::as_str), Some("dough"));
    }
}
