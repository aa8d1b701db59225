//! Counterfeit and misuse signals from consumers' scans of a label.
