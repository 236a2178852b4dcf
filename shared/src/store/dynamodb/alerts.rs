//! The [`AlertLog`] trait on the events table: one partition, `ALERTS`, an
//! item per transition sorted by [`Transition::id`] (time first). Transitions
//! are rare, so one partition is no hot spot.

use async_trait::async_trait;

use super::{key, parse, s, to_json, unavailable, DynamoStore};
use crate::alerts::Transition;
use crate::store::{AlertLog, StoreError};

const PARTITION: &str = "ALERTS";

#[async_trait]
impl AlertLog for DynamoStore {
    async fn record_transitions(&self, transitions: &[Transition]) -> Result<(), StoreError> {
        for transition in transitions {
            // The same transition again overwrites itself with itself.
            let mut item = key(PARTITION.to_owned(), &transition.id());
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
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s(PARTITION))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX).max(1))
            .send()
            .await
            .map_err(unavailable)?;
        page.items.unwrap_or_default().iter().map(parse).collect()
    }
}
