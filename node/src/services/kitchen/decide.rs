//! What a kitchen does with one ticket, decided before any I/O: a plain
//! function over the ticket, the menu, the stock and the injected fault.

use contracts::events::KitchenTicket;

use crate::services::assets::{Menu, Stock};

/// What the kitchen decided for one ticket, before any I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Cook it: these ingredients come out of stock.
    Cook(Vec<String>),
    /// Cannot make it, for this reason.
    Refuse(String),
}

/// Decides a ticket against the menu, the stock and the out-of-stock fault.
/// Takes the ingredients from `stock` when the answer is [`Plan::Cook`].
pub fn plan(ticket: &KitchenTicket, menu: &Menu, stock: &mut Stock, faked_out: &[String]) -> Plan {
    let mut needed = Vec::new();
    for item in &ticket.items {
        let Some(pizza) = menu.get(&item.pizza) else {
            return Plan::Refuse(format!("'{}' is not on this kitchen's menu", item.pizza));
        };
        for _ in 0..item.qty {
            needed.extend(pizza.ingredients.iter().cloned());
        }
    }
    if let Some(out) = needed.iter().find(|i| faked_out.contains(i)) {
        return Plan::Refuse(format!("out of {out}"));
    }
    if let Some(out) = stock.missing(needed.iter().map(String::as_str)) {
        return Plan::Refuse(format!("out of {out}"));
    }
    stock.take(needed.iter().map(String::as_str));
    Plan::Cook(needed)
}
