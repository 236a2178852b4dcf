//! The [`AlertLog`] trait on the events table: a partition per rule,
//! `ALERTS#{rule}`, an item per transition sorted by [`Transition::id`] (time
//! first). Each rule's latest transition is then one query, and the newest of
//! all are the newest of four. Transitions are rare: no hot spot.

use async_trait::async_trait;
use futures::future::try_join_all;

use super::{key, parse, s, to_json, unavailable, DynamoStore};
use crate::alerts::{Rule, Transition};
use crate::store::{AlertLog, StoreError};

fn partition(rule: Rule) -> String {
    format!("ALERTS#{}", rule.name())
}

impl DynamoStore {
    /// A rule's latest `limit` transitions, newest first.
    async fn rule_transitions(
        &self,
        rule: Rule,
        limit: usize,
    ) -> Result<Vec<Transition>, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s(partition(rule)))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX).max(1))
            .send()
            .await
            .map_err(unavailable)?;
        page.items.unwrap_or_default().iter().map(parse).collect()
    }
}

#[async_trait]
impl AlertLog for DynamoStore {
    async fn record_transitions(&self, transitions: &[Transition]) -> Result<(), StoreError> {
        for transition in transitions {
            // The same transition again overwrites itself.
            let mut item = key(partition(transition.rule), &transition.id());
            item.insert("data".to_owned(), s(to_json(transition)));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn transitions(&self, limit: usize) -> Result<Vec<Transition>, StoreError> {
        let per_rule =
            try_join_all(Rule::ALL.map(|rule| self.rule_transitions(rule, limit))).await?;
        let mut all: Vec<Transition> = per_rule.into_iter().flatten().collect();
        all.sort_by_key(|t| std::cmp::Reverse(t.id()));
        all.truncate(limit);
        Ok(all)
    }

    async fn latest_transitions(&self) -> Result<Vec<Transition>, StoreError> {
        let per_rule = try_join_all(Rule::ALL.map(|rule| self.rule_transitions(rule, 1))).await?;
        Ok(per_rule.into_iter().flatten().collect())
    }
}
