//! What model calls cost, and the budgets that stop a run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::conversation::Usage;

/// Prices of one model, in US dollars per million tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Input tokens at the normal rate.
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Input tokens written to the prompt cache.
    #[serde(default)]
    pub cache_write: f64,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read: f64,
}

/// Model name → price. A model missing from the table costs nothing, so a cost
/// budget only binds models the operator priced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PriceTable(pub BTreeMap<String, Price>);

impl PriceTable {
    /// The cost of `usage` on `model`, in US dollars.
    pub fn cost(&self, model: &str, usage: &Usage) -> f64 {
        let Some(price) = self.0.get(model) else { return 0.0 };
        let per = |tokens: u64, rate: f64| tokens as f64 * rate / 1e6;
        per(usage.input_tokens, price.input)
            + per(usage.output_tokens, price.output)
            + per(usage.cache_creation_input_tokens, price.cache_write)
            + per(usage.cache_read_input_tokens, price.cache_read)
    }
}

/// Limits on what a session may spend; checked before every model call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Most tokens (input, output and cache, summed) over the session.
    pub max_tokens: Option<u64>,
    /// Most US dollars over the session, per the price table.
    pub max_cost_usd: Option<f64>,
}

impl Budget {
    /// Why `usage` (costing `cost`) exhausts the budget, if it does.
    pub fn exhausted(&self, usage: &Usage, cost: f64) -> Option<String> {
        let tokens = usage.input_tokens
            + usage.output_tokens
            + usage.cache_creation_input_tokens
            + usage.cache_read_input_tokens;
        if let Some(max) = self.max_tokens
            && tokens >= max
        {
            return Some(format!("the session used {tokens} tokens, its budget is {max}"));
        }
        if let Some(max) = self.max_cost_usd
            && cost >= max
        {
            return Some(format!("the session cost ${cost:.4}, its budget is ${max:.4}"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_counts_every_kind_of_token_and_unknown_models_are_free() {
        let mut table = PriceTable::default();
        table.0.insert("m".into(), Price { input: 3.0, output: 15.0, cache_write: 3.75, cache_read: 0.3 });
        let usage = Usage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            cache_creation_input_tokens: 200_000,
            cache_read_input_tokens: 1_000_000,
        };
        let cost = table.cost("m", &usage);
        assert!((cost - (3.0 + 1.5 + 0.75 + 0.3)).abs() < 1e-9, "{cost}");
        assert_eq!(table.cost("other", &usage), 0.0);
        let budget = Budget { max_tokens: Some(2_300_000), max_cost_usd: None };
        assert_eq!(
            budget.exhausted(&usage, cost),
            Some("the session used 2300000 tokens, its budget is 2300000".into())
        );
        let budget = Budget { max_tokens: None, max_cost_usd: Some(10.0) };
        assert_eq!(budget.exhausted(&usage, cost), None);
    }
}
