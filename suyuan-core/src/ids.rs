//! Newtype ids, so that a batch id can never be passed where a site id is expected.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = i64)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

id_type!(
    /// An organisation: farm, cooperative, processor, lab, logistics firm, retailer, regulator or operator.
    OrgId,
    /// A person with an account.
    UserId,
    /// A plot, greenhouse, storage room, cold store, packing line or vehicle.
    SiteId,
    /// A product an organisation sells (e.g. 华宁柑橘).
    ProductId,
    /// A batch (lot) of one product.
    BatchId,
    /// A stored record of an event on a batch.
    RecordId,
    /// A split, merge or transformation that made new batches out of others.
    TransformationId,
    /// An alert raised by a rule.
    AlertId,
);
