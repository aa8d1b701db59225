//! The portable diesel schema: one description of the tables for SQLite and PostgreSQL alike, kept in step
//! with `migrations/sqlite` and `migrations/postgres` (a test compares them with the migrated databases).

diesel::table! {
    organisations (id) {
        id -> BigInt,
        name -> Text,
        kind -> Text,
        credit_code -> Nullable<Text>,
        division_code -> Text,
        address -> Nullable<Text>,
        public_contact -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        org_id -> BigInt,
        username -> Text,
        display_name -> Text,
        phone -> Nullable<Text>,
        role -> Text,
        password_hash -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    auth_tokens (token_hash) {
        token_hash -> Text,
        user_id -> BigInt,
        kind -> Text,
        label -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    sites (id) {
        id -> BigInt,
        org_id -> BigInt,
        name -> Text,
        kind -> Text,
        division_code -> Text,
        address -> Nullable<Text>,
        latitude -> Nullable<Double>,
        longitude -> Nullable<Double>,
        area_mu -> Nullable<Double>,
        created_at -> BigInt,
    }
}

diesel::table! {
    products (id) {
        id -> BigInt,
        org_id -> BigInt,
        name -> Text,
        category -> Text,
        brand -> Nullable<Text>,
        certifications -> Text,
        gtin -> Nullable<Text>,
        created_at -> BigInt,
        label_fields -> Text,
        distribution_area -> Text,
    }
}

diesel::table! {
    batches (id) {
        id -> BigInt,
        org_id -> BigInt,
        product_id -> BigInt,
        lot_code -> Text,
        quantity -> Double,
        unit -> Text,
        status -> Text,
        status_reason -> Nullable<Text>,
        origin_site_id -> Nullable<BigInt>,
        custodian_org_id -> BigInt,
        in_transit_to_org_id -> Nullable<BigInt>,
        record_count -> BigInt,
        head_hash -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    transformations (id) {
        id -> BigInt,
        client_id -> Text,
        org_id -> BigInt,
        kind -> Text,
        event_time -> BigInt,
        actor_user_id -> BigInt,
        request -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    lineage_edges (id) {
        id -> BigInt,
        transformation_id -> BigInt,
        parent_batch_id -> BigInt,
        child_batch_id -> BigInt,
        kind -> Text,
        quantity -> Double,
        unit -> Text,
    }
}

diesel::table! {
    records (id) {
        id -> BigInt,
        client_id -> Text,
        batch_id -> BigInt,
        seq -> BigInt,
        kind -> Text,
        event_time -> BigInt,
        received_at -> BigInt,
        site_id -> Nullable<BigInt>,
        actor_user_id -> BigInt,
        org_id -> BigInt,
        details -> Text,
        attachments -> Text,
        flags -> Text,
        supersedes_id -> Nullable<BigInt>,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    inspection_requests (id) {
        id -> BigInt,
        batch_id -> BigInt,
        lab_org_id -> BigInt,
        requested_by -> BigInt,
        requested_at -> BigInt,
    }
}

diesel::table! {
    alerts (id) {
        id -> BigInt,
        kind -> Text,
        severity -> Text,
        org_id -> Nullable<BigInt>,
        batch_id -> Nullable<BigInt>,
        record_id -> Nullable<BigInt>,
        message -> Text,
        opened_at -> BigInt,
        closed_at -> Nullable<BigInt>,
        site_id -> Nullable<BigInt>,
        device_id -> Nullable<BigInt>,
        rule_id -> Nullable<BigInt>,
        metric -> Nullable<Text>,
        value -> Nullable<Double>,
        late -> Bool,
    }
}

diesel::table! {
    signing_keys (key_id) {
        key_id -> BigInt,
        algorithm -> Text,
        public_key -> Text,
        next_sequence -> BigInt,
        created_at -> BigInt,
        retired_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    chain_anchors (id) {
        id -> BigInt,
        created_at -> BigInt,
        key_id -> BigInt,
        batches -> BigInt,
        records -> BigInt,
        digest -> Text,
        signature -> Text,
        document -> Text,
    }
}

diesel::table! {
    label_quotas (org_id) {
        org_id -> BigInt,
        quota -> Nullable<BigInt>,
        used -> BigInt,
        updated_by -> Nullable<BigInt>,
        updated_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    label_runs (id) {
        id -> BigInt,
        org_id -> BigInt,
        product_id -> BigInt,
        key_id -> BigInt,
        first_sequence -> BigInt,
        label_count -> BigInt,
        layout -> Text,
        host -> Text,
        status -> Text,
        requested_by -> Nullable<BigInt>,
        created_at -> BigInt,
        finished_at -> Nullable<BigInt>,
        output -> Nullable<Text>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    label_activations (id) {
        id -> BigInt,
        run_id -> BigInt,
        key_id -> BigInt,
        first_sequence -> BigInt,
        last_sequence -> BigInt,
        batch_id -> BigInt,
        activated_by -> BigInt,
        activated_at -> BigInt,
    }
}

diesel::table! {
    label_voids (id) {
        id -> BigInt,
        run_id -> BigInt,
        key_id -> BigInt,
        sequence -> BigInt,
        reason -> Text,
        voided_by -> BigInt,
        voided_at -> BigInt,
    }
}

diesel::table! {
    devices (id) {
        id -> BigInt,
        org_id -> BigInt,
        site_id -> BigInt,
        client_id -> Text,
        kind -> Text,
        name -> Text,
        password_hash -> Text,
        enabled -> Bool,
        status -> Text,
        status_at -> Nullable<BigInt>,
        last_seen_at -> Nullable<BigInt>,
        created_by -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    device_images (id) {
        id -> BigInt,
        device_id -> BigInt,
        site_id -> BigInt,
        taken_at -> BigInt,
        sha256 -> Text,
        bytes -> BigInt,
        width -> BigInt,
        height -> BigInt,
        path -> Text,
        thumb_path -> Text,
        received_at -> BigInt,
    }
}

diesel::table! {
    iot_rules (id) {
        id -> BigInt,
        org_id -> BigInt,
        site_id -> BigInt,
        device_id -> Nullable<BigInt>,
        kind -> Text,
        name -> Text,
        metric -> Nullable<Text>,
        min_value -> Nullable<Double>,
        max_value -> Nullable<Double>,
        duration_ms -> BigInt,
        enabled -> Bool,
        created_by -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    device_rule_states (device_id) {
        device_id -> BigInt,
        state -> Text,
        updated_at -> BigInt,
    }
}

diesel::table! {
    gateway_refusals (reason) {
        reason -> Text,
        refused -> BigInt,
        last_at -> BigInt,
        last_topic -> Text,
        last_detail -> Text,
    }
}

diesel::table! {
    telemetry (device_id, ts, seq) {
        device_id -> BigInt,
        ts -> BigInt,
        seq -> BigInt,
        site_id -> BigInt,
        received_at -> BigInt,
        late -> Bool,
        metrics -> Text,
    }
}

diesel::table! {
    /// A view over `telemetry`: one row per reading (metric) of each stored message.
    readings (device_id, metric, ts, seq) {
        device_id -> BigInt,
        metric -> Text,
        ts -> BigInt,
        seq -> BigInt,
        site_id -> BigInt,
        value -> Double,
        received_at -> BigInt,
        late -> Bool,
    }
}

diesel::table! {
    scans (id) {
        id -> BigInt,
        scanned_at -> BigInt,
        method -> Text,
        verdict -> Text,
        key_id -> Nullable<BigInt>,
        sequence -> Nullable<BigInt>,
        batch_id -> Nullable<BigInt>,
        org_id -> Nullable<BigInt>,
        division_code -> Nullable<Text>,
        region_source -> Nullable<Text>,
        latitude -> Nullable<Double>,
        longitude -> Nullable<Double>,
        first_scan -> Bool,
        client_hash -> Text,
    }
}

diesel::table! {
    label_scan_stats (key_id, sequence) {
        key_id -> BigInt,
        sequence -> BigInt,
        scans -> BigInt,
        devices -> BigInt,
        first_at -> BigInt,
        first_division -> Nullable<Text>,
        last_at -> BigInt,
        last_division -> Nullable<Text>,
        last_latitude -> Nullable<Double>,
        last_longitude -> Nullable<Double>,
        suspicion -> Nullable<Text>,
        alerted -> Text,
    }
}

diesel::table! {
    label_scan_devices (key_id, sequence, client_hash) {
        key_id -> BigInt,
        sequence -> BigInt,
        client_hash -> Text,
    }
}

diesel::table! {
    scan_region_days (day, division_code, verdict) {
        day -> Text,
        division_code -> Text,
        verdict -> Text,
        scans -> BigInt,
    }
}

diesel::table! {
    settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    /// Export jobs: a batch's trace or a period as CSV, XLSX or EPCIS, written in the background.
    exports (id) {
        id -> BigInt,
        requested_by -> BigInt,
        org_id -> BigInt,
        scope -> Text,
        format -> Text,
        status -> Text,
        rows_done -> BigInt,
        rows_total -> Nullable<BigInt>,
        file_name -> Nullable<Text>,
        bytes -> Nullable<BigInt>,
        error -> Nullable<Text>,
        created_at -> BigInt,
        started_at -> Nullable<BigInt>,
        updated_at -> BigInt,
        finished_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(users -> organisations (org_id));
diesel::joinable!(auth_tokens -> users (user_id));
diesel::joinable!(sites -> organisations (org_id));
diesel::joinable!(products -> organisations (org_id));
diesel::joinable!(batches -> products (product_id));
diesel::joinable!(records -> batches (batch_id));
diesel::joinable!(inspection_requests -> batches (batch_id));
diesel::joinable!(label_runs -> signing_keys (key_id));
diesel::joinable!(label_runs -> products (product_id));
diesel::joinable!(label_activations -> label_runs (run_id));
diesel::joinable!(devices -> sites (site_id));
diesel::joinable!(readings -> devices (device_id));
diesel::joinable!(device_images -> devices (device_id));
diesel::joinable!(label_voids -> label_runs (run_id));

diesel::table! {
    login_throttle (key) {
        key -> Text,
        failures -> BigInt,
        window_start -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    organisations,
    users,
    auth_tokens,
    sites,
    products,
    batches,
    transformations,
    lineage_edges,
    records,
    chain_anchors,
    label_quotas,
    inspection_requests,
    alerts,
    signing_keys,
    label_runs,
    label_activations,
    label_voids,
    devices,
    device_images,
    iot_rules,
    device_rule_states,
    gateway_refusals,
    telemetry,
    readings,
    scans,
    label_scan_stats,
    label_scan_devices,
    scan_region_days,
    settings,
    login_throttle,
    exports,
);
