//! The words of the scan rules' alerts (counterfeit and misuse of labels).
