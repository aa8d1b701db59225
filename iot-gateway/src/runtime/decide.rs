//! What to do with one message: parse it, check its device, its site and kind, store an image's files,
//! and say whether to write it, refuse it (all or in part) or defer it because the database or the
//! media disk is away now.

use super::core::Core;
use crate::counters::{Reason, Refusal};
use crate::devices::Lookup;
use crate::message::{parse_message, Parsed};
use crate::store::{Accepted, AcceptedKind, DeviceKind};

/// What to do with one message.
#[derive(Debug)]
pub(super) enum Decision {
    /// Nothing to store: the message is refused whole, or each of its parts is.
    Refuse(Vec<Refusal>),
    /// Write it; the refused parts are counted once it is.
    Store(Accepted, Vec<Refusal>),
    /// Cannot be decided now (the database or the media disk is away): spool it, or retry.
    Defer,
}

impl Core {
    /// Decides what to do with one message. With `defer_checks`, only the checks that need
    /// neither the database nor the media folder are made (the spool is not empty, so the
    /// message is spooled and fully checked when drained).
    pub(super) fn decide(
        &self,
        topic: &str,
        payload: &[u8],
        received_at_ms: i64,
        defer_checks: bool,
    ) -> Decision {
        let parsed = match parse_message(
            &self.topics,
            &self.config.telemetry,
            topic,
            payload,
            received_at_ms,
        ) {
            Ok(p) => p,
            Err(refusal) => return Decision::Refuse(vec![refusal]),
        };
        // Cheap, and keeps an oversized payload out of the spool.
        if matches!(parsed, Parsed::ImageJpeg { .. })
            && payload.len() > self.config.images.max_bytes
        {
            return Decision::Refuse(vec![Refusal::new(
                Reason::ImageTooLarge,
                format!(
                    "{} bytes, limit {}",
                    payload.len(),
                    self.config.images.max_bytes
                ),
            )]);
        }
        if defer_checks {
            return Decision::Defer;
        }
        let from = parsed.topic();
        let lookup = {
            let mut devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
            devices.lookup(self.store.as_ref(), &from.device)
        };
        let device = match lookup {
            Lookup::Found(d) => d,
            Lookup::Unknown => {
                return Decision::Refuse(vec![Refusal::new(
                    Reason::UnknownDevice,
                    format!("client id {} is not a registered device", from.device),
                )])
            }
            Lookup::Unavailable(e) => {
                tracing::debug!(error = %e, device = %from.device, "cannot look the device up now");
                return Decision::Defer;
            }
        };
        if !device.enabled {
            return Decision::Refuse(vec![Refusal::new(
                Reason::DeviceDisabled,
                format!("device {} is disabled", from.device),
            )]);
        }
        if device.site != from.site {
            return Decision::Refuse(vec![Refusal::new(
                Reason::WrongSite,
                format!(
                    "device {} is registered at site {}, not {}",
                    from.device, device.site, from.site
                ),
            )]);
        }
        let (what, parts) = match parsed {
            Parsed::Telemetry { telemetry, .. } => {
                if telemetry.readings.is_empty() {
                    let mut refusals = telemetry.refusals;
                    if refusals.is_empty() {
                        refusals.push(Refusal::new(Reason::NoValues, "no readings"));
                    }
                    return Decision::Refuse(refusals);
                }
                (
                    AcceptedKind::Telemetry(telemetry.readings),
                    telemetry.refusals,
                )
            }
            Parsed::ImageJpeg { ts_ms, .. } => {
                if device.kind != DeviceKind::Camera {
                    return Decision::Refuse(vec![Refusal::new(
                        Reason::WrongDeviceKind,
                        format!(
                            "device {} is registered as a sensor, not a camera",
                            device.client_id
                        ),
                    )]);
                }
                match self.media.store_jpeg(payload, &self.config.images) {
                    Ok(image) => (AcceptedKind::Image { ts_ms, image }, Vec::new()),
                    Err(e) => match e.refusal() {
                        Some(r) => return Decision::Refuse(vec![r.clone()]),
                        None => {
                            tracing::warn!(error = %e, "cannot store an image now");
                            return Decision::Defer;
                        }
                    },
                }
            }
            Parsed::Status { status, .. } => (AcceptedKind::Status(status), Vec::new()),
        };
        Decision::Store(
            Accepted {
                received_at_ms,
                device_id: device.id,
                site: device.site,
                what,
            },
            parts,
        )
    }
}
