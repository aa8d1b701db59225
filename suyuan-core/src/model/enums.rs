//! Closed vocabularies stored as snake_case text.

use serde::{Deserialize, Serialize};

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $variant),* }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The stored text.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            /// Parses the stored text.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use text_enum;

text_enum!(
    /// What an organisation is.
    OrgKind {
        /// 农户、家庭农场
        Farm = "farm",
        /// 合作社
        Cooperative = "cooperative",
        /// 加工企业
        Processor = "processor",
        /// 检测机构
        Lab = "lab",
        /// 物流、冷库
        Logistics = "logistics",
        /// 零售
        Retailer = "retailer",
        /// 监管部门
        Regulator = "regulator",
        /// 县电商服务中心 (runs the platform)
        Operator = "operator",
    }
);

text_enum!(
    /// What a person may do; see [`crate::policy`].
    Role {
        /// 农户 / 合作社社员: records farming operations for their organisation.
        Farmer = "farmer",
        /// 加工企业员工: receives, processes, packs, transforms.
        Processor = "processor",
        /// 检测员: records inspections for batches their lab was asked to inspect.
        Inspector = "inspector",
        /// 物流、冷库: ships and receives.
        Logistics = "logistics",
        /// 监管: reads everything, recalls.
        Regulator = "regulator",
        /// 运营: manages organisations and accounts.
        Operator = "operator",
    }
);

text_enum!(
    /// Where something is grown, stored or processed.
    SiteKind {
        /// 地块
        Plot = "plot",
        /// 大棚
        Greenhouse = "greenhouse",
        /// 仓库
        StorageRoom = "storage_room",
        /// 冷库
        ColdStore = "cold_store",
        /// 加工线
        PackingLine = "packing_line",
        /// 车辆
        Vehicle = "vehicle",
    }
);

text_enum!(
    /// The state of a batch.
    BatchStatus {
        /// Normal.
        Open = "open",
        /// Held by a rule (failed inspection, harvest inside a pre-harvest interval) until an inspection passes.
        Blocked = "blocked",
        /// Withdrawn, with everything made from it.
        Recalled = "recalled",
    }
);

text_enum!(
    /// How new batches were made from others.
    LineageKind {
        /// One batch into several.
        Split = "split",
        /// Several batches into one.
        Merge = "merge",
        /// Inputs turned into a different product (e.g. fruit into juice).
        Transform = "transform",
    }
);

text_enum!(
    /// Certifications (三品一标).
    Certification {
        /// 无公害农产品
        PollutionFree = "pollution_free",
        /// 绿色食品
        GreenFood = "green_food",
        /// 有机产品
        Organic = "organic",
        /// 农产品地理标志
        GeographicalIndication = "geographical_indication",
    }
);
