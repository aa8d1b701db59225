//! `suyuan mqtt-auth`: Mosquitto's password file and ACL file, written from the device registry, so
//! that devices on an external Mosquitto (`SUYUAN_MQTT_URL`) get the guarantee the embedded broker
//! gives: each device logs in with the credentials the API issued, may publish only on its own topics
//! (its last will included), and reads nothing; the gateway's user reads `{prefix}/#`. With
//! `allow_anonymous false` in Mosquitto's configuration nobody else gets in.
//!
//! Device password hashes are stored in Mosquitto's PBKDF2-SHA512 form (`$7$…`), so the files are
//! written without knowing any password. Devices registered before that have an argon2 hash Mosquitto
//! cannot read: they are left out and listed, to be given new credentials
//! (`POST /api/v1/devices/{id}/credentials`). Disabled devices are left out. Run it again after any
//! change to the devices and send Mosquitto `SIGHUP` to reload both files.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use suyuan_core::store::iot::{self, DeviceCredential};
use suyuan_core::Database;

use super::DataArgs;

/// Options of `suyuan mqtt-auth`.
#[derive(Debug, Clone, Args)]
pub struct MqttAuthArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The password file to write (Mosquitto's `password_file`).
    #[arg(long)]
    pub password_file: PathBuf,
    /// The ACL file to write (Mosquitto's `acl_file`).
    #[arg(long)]
    pub acl_file: PathBuf,
    /// The gateway's MQTT user name (the user of `SUYUAN_MQTT_URL`); it may read `{prefix}/#`.
    #[arg(long)]
    pub gateway_user: String,
    /// The gateway's MQTT password (hashed into the password file).
    #[arg(long, env = "SUYUAN_MQTT_GATEWAY_PASSWORD", hide_env_values = true)]
    pub gateway_password: String,
    /// The gateway's topic prefix.
    #[arg(long, default_value = "suyuan/v1")]
    pub prefix: String,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttAuthReport {
    /// Devices given a login and their topics.
    pub devices: usize,
    /// Disabled devices, left out.
    pub disabled: usize,
    /// Enabled devices whose stored hash Mosquitto cannot read (registered before hashes were stored
    /// in its form): left out until their credentials are rotated.
    pub need_rotation: Vec<String>,
}

/// Runs the command.
pub fn run(args: MqttAuthArgs) -> anyhow::Result<()> {
    let db = args.data.open()?;
    let report = write_files(&db, &args)?;
    println!(
        "Wrote {} ({} devices and the gateway user {}) and {}.",
        args.password_file.display(),
        report.devices,
        args.gateway_user,
        args.acl_file.display()
    );
    if report.disabled > 0 {
        println!("{} disabled devices left out.", report.disabled);
    }
    if !report.need_rotation.is_empty() {
        println!(
            "{} devices need new credentials before they can log in to Mosquitto \
             (POST /api/v1/devices/{{id}}/credentials, then run this again): {}",
            report.need_rotation.len(),
            report.need_rotation.join(", ")
        );
    }
    println!("Reload Mosquitto to apply them: kill -HUP <mosquitto's pid>.");
    Ok(())
}

/// Writes both files (each replaced whole, never half-written).
pub fn write_files(db: &Database, args: &MqttAuthArgs) -> anyhow::Result<MqttAuthReport> {
    validate(args)?;
    let devices = db.read(iot::device_credentials)?;
    let gateway_hash = suyuan_core::auth::hash_device_password(&args.gateway_password);
    let (passwords, acl, report) =
        mosquitto_files(&devices, &args.prefix, &args.gateway_user, &gateway_hash);
    replace(&args.password_file, &passwords)?;
    replace(&args.acl_file, &acl)?;
    Ok(report)
}

fn validate(args: &MqttAuthArgs) -> anyhow::Result<()> {
    let user = &args.gateway_user;
    if user.is_empty() || user.contains([':', '\n', '\r']) || user.trim() != user {
        anyhow::bail!("--gateway-user must be a non-empty name without ':' or spaces around it");
    }
    if args.gateway_password.is_empty() {
        anyhow::bail!("the gateway's password is empty (SUYUAN_MQTT_GATEWAY_PASSWORD)");
    }
    let p = &args.prefix;
    if p.is_empty() || p.starts_with('$') || p.contains(['+', '#', '\n', ' ']) || p.ends_with('/') {
        anyhow::bail!("--prefix {p:?} is not a topic prefix such as suyuan/v1");
    }
    Ok(())
}

/// The password file and ACL file for these devices (client ids are `A-Z a-z 0-9 _ - .` only, so
/// they are safe in both files as they are).
pub fn mosquitto_files(
    devices: &[DeviceCredential],
    prefix: &str,
    gateway_user: &str,
    gateway_hash: &str,
) -> (String, String, MqttAuthReport) {
    let mut report = MqttAuthReport {
        devices: 0,
        disabled: 0,
        need_rotation: Vec::new(),
    };
    let mut passwords = format!("{gateway_user}:{gateway_hash}\n");
    let mut acl = format!(
        "# Written by `suyuan mqtt-auth` from the device registry: run it again after changing devices,\n\
         # then reload Mosquitto (SIGHUP). Devices publish only on their own topics and read nothing.\n\
         \n\
         user {gateway_user}\n\
         topic read {prefix}/#\n"
    );
    for d in devices {
        if !d.enabled {
            report.disabled += 1;
            continue;
        }
        if !suyuan_core::auth::is_mosquitto_hash(&d.password_hash) {
            report.need_rotation.push(d.client_id.clone());
            continue;
        }
        report.devices += 1;
        let (id, site) = (&d.client_id, d.site_id.0);
        passwords.push_str(&format!("{id}:{}\n", d.password_hash));
        acl.push_str(&format!(
            "\nuser {id}\n\
             topic write {prefix}/{site}/{id}/telemetry\n\
             topic write {prefix}/{site}/{id}/status\n\
             topic write {prefix}/{site}/{id}/image/jpeg/+\n"
        ));
    }
    (passwords, acl, report)
}

/// Replaces `path` with `content` through a temporary file beside it, readable by its owner and
/// group only (Mosquitto's user reads it through the group).
fn replace(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o640);
    }
    let written = options
        .open(&tmp)
        .and_then(|mut f| f.write_all(content.as_bytes()).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", tmp.display()));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use suyuan_core::SiteId;

    #[test]
    fn each_device_writes_its_own_topics_and_the_gateway_reads() {
        let new_hash = suyuan_core::auth::hash_device_password("pw");
        let devices = vec![
            DeviceCredential {
                client_id: "cold-01".into(),
                site_id: SiteId(3),
                password_hash: new_hash.clone(),
                enabled: true,
            },
            DeviceCredential {
                client_id: "old-01".into(),
                site_id: SiteId(3),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$abc$def".into(),
                enabled: true,
            },
            DeviceCredential {
                client_id: "off-01".into(),
                site_id: SiteId(4),
                password_hash: new_hash.clone(),
                enabled: false,
            },
        ];
        let (passwords, acl, report) = mosquitto_files(&devices, "suyuan/v1", "gw", "$7$1$x$y");
        assert_eq!(passwords, format!("gw:$7$1$x$y\ncold-01:{new_hash}\n"));
        assert!(acl.contains("user gw\ntopic read suyuan/v1/#\n"), "{acl}");
        assert!(
            acl.contains(
                "user cold-01\ntopic write suyuan/v1/3/cold-01/telemetry\n\
                 topic write suyuan/v1/3/cold-01/status\n\
                 topic write suyuan/v1/3/cold-01/image/jpeg/+\n"
            ),
            "{acl}"
        );
        assert!(
            !acl.contains("user old-01") && !acl.contains("user off-01"),
            "{acl}"
        );
        assert!(!acl.contains("topic read suyuan/v1/3"), "{acl}");
        assert_eq!(
            report,
            MqttAuthReport {
                devices: 1,
                disabled: 1,
                need_rotation: vec!["old-01".into()],
            }
        );
    }
}
