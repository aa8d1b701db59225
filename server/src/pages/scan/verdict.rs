//! The verdict banner at the top of the scan page: from what a code resolved to, the tone (colour), the
//! heading, the lines that explain it and the advice, in the reader's language; for genuine labels also
//! how often they were looked up and whether that looks like a copied label.

use suyuan_core::model::{ScanVerdict, Suspicion};
use suyuan_core::region;

use super::dates::day_month;
use crate::pages::texts;
use crate::pages::Lang;
use crate::scans::lookup::{CodeKind, ScanFacts};

/// The verdict banner.
#[derive(Debug, Clone)]
pub struct VerdictView {
    pub tone: &'static str,
    pub heading: String,
    pub lines: Vec<String>,
    pub advice: Option<String>,
}

/// The city of a region, for a sentence; none when the region is unknown.
fn place(code: Option<&str>) -> Option<String> {
    code.and_then(region::short_name)
}

/// The verdict banner of a code.
pub fn verdict_view(f: &ScanFacts, lang: Lang) -> VerdictView {
    let zh = lang == Lang::Zh;
    let pick = |a: &str, b: &str| if zh { a.to_owned() } else { b.to_owned() };
    let reason = f.batch_reason.clone().unwrap_or_default();
    let mut v = match f.verdict {
        ScanVerdict::Recalled => VerdictView {
            tone: "bad",
            heading: pick("已召回", "Recalled"),
            lines: vec![if zh {
                format!("该批次产品已被召回：{reason}")
            } else {
                format!("This batch has been recalled: {reason}")
            }],
            advice: Some(pick(
                "请勿食用。请停止销售或退回购买处，可联系生产者或当地农业农村部门。",
                "Do not eat it. Stop selling it or return it to where you bought it; contact the producer or the local agriculture bureau.",
            )),
        },
        ScanVerdict::OnHold => VerdictView {
            tone: "warn",
            heading: pick("正品 · 暂停销售", "Genuine · on hold"),
            lines: vec![if zh {
                format!("标签为正品，但该批次正在核查，暂停销售：{reason}")
            } else {
                format!("The label is genuine, but the batch is on hold pending checks: {reason}")
            }],
            advice: None,
        },
        ScanVerdict::Active | ScanVerdict::Batch => VerdictView {
            tone: "ok",
            heading: pick("正品", "Genuine"),
            lines: vec![pick(
                "此标签由平台签发，已绑定到下列产品批次。",
                "This label was issued by the platform and is bound to the batch below.",
            )],
            advice: None,
        },
        ScanVerdict::NotActivated => VerdictView {
            tone: "warn",
            heading: pick("未激活", "Not activated"),
            lines: vec![pick(
                "标签为平台签发，但尚未绑定产品批次。",
                "The label was issued by the platform but is not yet bound to a batch.",
            )],
            advice: Some(pick(
                "若商品已在销售，请向商家或监管部门反映。",
                "If the product is on sale, tell the seller or the regulator.",
            )),
        },
        ScanVerdict::Void => VerdictView {
            tone: "bad",
            heading: pick("已作废", "Void"),
            lines: vec![if zh {
                format!(
                    "此标签已作废（{}），不应出现在销售的商品上。",
                    f.lookup
                        .as_ref()
                        .and_then(|l| l.void_reason.clone())
                        .unwrap_or_default()
                )
            } else {
                format!(
                    "This label was voided ({}) and should not be on a product for sale.",
                    f.lookup
                        .as_ref()
                        .and_then(|l| l.void_reason.clone())
                        .unwrap_or_default()
                )
            }],
            advice: Some(pick(
                "请向商家或监管部门反映。",
                "Tell the seller or the regulator.",
            )),
        },
        ScanVerdict::NotMinted => VerdictView {
            tone: "bad",
            heading: pick("可疑标签", "Suspicious label"),
            lines: vec![pick(
                "签名有效，但平台从未发行过此编号，可能是盗印。",
                "The signature is valid but the platform never issued this number: possibly an unauthorised print.",
            )],
            advice: Some(pick("请向监管部门反映。", "Tell the regulator.")),
        },
        ScanVerdict::Counterfeit => VerdictView {
            tone: "bad",
            heading: pick("假冒标签", "Counterfeit"),
            lines: vec![pick(
                "签名无效：这不是平台签发的标签，可能是伪造或被篡改。",
                "The signature is invalid: this label was not issued by the platform (forged or edited).",
            )],
            advice: Some(pick(
                "请勿购买或食用，并向当地市场监管或农业农村部门举报。",
                "Do not buy or eat it; report it to the local market or agriculture authority.",
            )),
        },
        ScanVerdict::UnknownKey => VerdictView {
            tone: "bad",
            heading: pick("无法验证", "Cannot be verified"),
            lines: vec![pick(
                "此标签声称由平台未知的密钥签发，不能确认真伪。",
                "This label names a signing key the platform never had; it cannot be confirmed.",
            )],
            advice: None,
        },
        ScanVerdict::Malformed => VerdictView {
            tone: "bad",
            heading: pick("不是有效的追溯码", "Not a valid trace code"),
            lines: vec![if f.kind == CodeKind::Short {
                pick(
                    "没有这个追溯码，请核对标签二维码下方的13位数字。",
                    "There is no such code; check the 13 digits printed under the QR code.",
                )
            } else {
                pick(
                    "链接不完整或有误，请重新扫描标签上的二维码。",
                    "The link is incomplete or wrong; scan the QR code on the label again.",
                )
            }],
            advice: None,
        },
    };
    // Genuine labels: how often they were looked up, and whether that looks like a copied label.
    if matches!(
        f.verdict,
        ScanVerdict::Active | ScanVerdict::OnHold | ScanVerdict::Recalled
    ) {
        match &f.stats {
            None => v
                .lines
                .push(pick(texts::ZH.first_scan_now, texts::EN.first_scan_now)),
            Some(s) => {
                let count = s.scans + 1;
                let first = if zh {
                    format!(
                        "首次查询于{}{}，共被查询 {} 次，来自 {} 台设备。",
                        day_month(s.first_at, lang),
                        place(s.first_division.as_deref())
                            .map(|p| format!("在{p}"))
                            .unwrap_or_default(),
                        count,
                        s.devices.max(1)
                    )
                } else {
                    format!(
                        "First looked up on {}{}; looked up {} times from {} devices.",
                        day_month(s.first_at, lang),
                        place(s.first_division.as_deref())
                            .map(|p| format!(" in {p}"))
                            .unwrap_or_default(),
                        count,
                        s.devices.max(1)
                    )
                };
                if let Some(why) = s.suspicion {
                    if f.verdict == ScanVerdict::Active {
                        v.tone = "warn";
                        v.heading = pick("正品 · 疑似被复制", "Genuine · possibly copied");
                    }
                    v.lines.push(first);
                    v.lines.push(match (why, zh) {
                        (Suspicion::ManyDevices, true) => "一个包装通常不会被这么多台设备查询，此标签可能被复制。".into(),
                        (Suspicion::ManyDevices, false) => "One package is rarely looked up from so many devices: this label may have been copied.".into(),
                        (Suspicion::ImpossibleTravel, true) => "此标签在短时间内于相距很远的地方被查询，可能被复制。".into(),
                        (Suspicion::ImpossibleTravel, false) => "This label was looked up in far-apart places within too short a time: it may have been copied.".into(),
                        (Suspicion::OutsideArea, true) => "此标签在产品销售区域以外被查询，可能是窜货或被复制。".into(),
                        (Suspicion::OutsideArea, false) => "This label was looked up outside the product's sales area: diverted goods or a copied label.".into(),
                    });
                    if v.advice.is_none() {
                        v.advice = Some(pick(
                            "如果您手中的包装是新开封的，请向商家或监管部门反映。",
                            "If your package is freshly opened, tell the seller or the regulator.",
                        ));
                    }
                } else {
                    v.lines.push(first);
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use suyuan_core::model::{
        LabelLookup, LabelRef, LabelScanStats, LabelState, ScanVerdict, Suspicion,
    };

    use super::verdict_view;
    use crate::pages::{texts, Lang};
    use crate::scans::lookup::{CodeKind, ScanFacts};

    fn facts(verdict: ScanVerdict) -> ScanFacts {
        ScanFacts {
            verdict,
            kind: CodeKind::Signed,
            serial: None,
            lookup: None,
            batch_status: None,
            batch_reason: Some("农残超标".into()),
            stats: None,
        }
    }

    fn label() -> LabelRef {
        LabelRef {
            key_id: 1,
            sequence: 42,
        }
    }

    fn stats(suspicion: Option<Suspicion>) -> LabelScanStats {
        LabelScanStats {
            label: label(),
            scans: 4,
            devices: 3,
            first_at: Utc.with_ymd_and_hms(2026, 5, 31, 17, 0, 0).unwrap(),
            first_division: None,
            last_at: Utc.with_ymd_and_hms(2026, 6, 2, 3, 0, 0).unwrap(),
            last_division: None,
            suspicion,
        }
    }

    #[test]
    fn each_verdict_has_its_tone_and_heading_in_both_languages() {
        let cases = [
            (ScanVerdict::Active, "ok", "正品", "Genuine"),
            (ScanVerdict::Batch, "ok", "正品", "Genuine"),
            (
                ScanVerdict::OnHold,
                "warn",
                "正品 · 暂停销售",
                "Genuine · on hold",
            ),
            (ScanVerdict::Recalled, "bad", "已召回", "Recalled"),
            (ScanVerdict::NotActivated, "warn", "未激活", "Not activated"),
            (ScanVerdict::Void, "bad", "已作废", "Void"),
            (
                ScanVerdict::NotMinted,
                "bad",
                "可疑标签",
                "Suspicious label",
            ),
            (ScanVerdict::Counterfeit, "bad", "假冒标签", "Counterfeit"),
            (
                ScanVerdict::UnknownKey,
                "bad",
                "无法验证",
                "Cannot be verified",
            ),
            (
                ScanVerdict::Malformed,
                "bad",
                "不是有效的追溯码",
                "Not a valid trace code",
            ),
        ];
        for (verdict, tone, zh, en) in cases {
            let v = verdict_view(&facts(verdict), Lang::Zh);
            assert_eq!((v.tone, v.heading.as_str()), (tone, zh), "{verdict:?}");
            assert!(!v.lines.is_empty(), "{verdict:?}");
            let v = verdict_view(&facts(verdict), Lang::En);
            assert_eq!((v.tone, v.heading.as_str()), (tone, en), "{verdict:?}");
        }
    }

    #[test]
    fn bad_news_says_what_to_do_and_why() {
        let v = verdict_view(&facts(ScanVerdict::Recalled), Lang::En);
        assert_eq!(v.lines[0], "This batch has been recalled: 农残超标");
        assert!(v
            .advice
            .as_deref()
            .is_some_and(|a| a.starts_with("Do not eat it.")));
        let v = verdict_view(&facts(ScanVerdict::Counterfeit), Lang::Zh);
        assert!(v.advice.as_deref().is_some_and(|a| a.contains("举报")));
        let mut void = facts(ScanVerdict::Void);
        void.lookup = Some(LabelLookup {
            label: label(),
            state: LabelState::Void,
            run_id: None,
            org_id: None,
            product_id: None,
            batch_id: None,
            void_reason: Some("misprint".into()),
        });
        let v = verdict_view(&void, Lang::En);
        assert_eq!(
            v.lines,
            ["This label was voided (misprint) and should not be on a product for sale."]
        );
        assert_eq!(
            verdict_view(&facts(ScanVerdict::Active), Lang::En).advice,
            None
        );
    }

    #[test]
    fn a_mistyped_short_code_is_told_to_check_the_digits() {
        let mut short = facts(ScanVerdict::Malformed);
        short.kind = CodeKind::Short;
        let v = verdict_view(&short, Lang::En);
        assert_eq!(
            v.lines,
            ["There is no such code; check the 13 digits printed under the QR code."]
        );
        let v = verdict_view(&facts(ScanVerdict::Malformed), Lang::En);
        assert!(v.lines[0].contains("scan the QR code"), "{:?}", v.lines);
    }

    #[test]
    fn genuine_labels_say_how_often_they_were_looked_up() {
        let v = verdict_view(&facts(ScanVerdict::Active), Lang::Zh);
        assert_eq!(
            v.lines.last().map(String::as_str),
            Some(texts::ZH.first_scan_now)
        );
        let mut seen = facts(ScanVerdict::Active);
        seen.stats = Some(stats(None));
        // The first lookup's day is in China time: 17:00 UTC on 31 May is 1 June there.
        let v = verdict_view(&seen, Lang::En);
        assert_eq!(
            v.lines.last().map(String::as_str),
            Some("First looked up on 1 Jun; looked up 5 times from 3 devices.")
        );
        assert_eq!(v.tone, "ok");
        let v = verdict_view(&seen, Lang::Zh);
        assert_eq!(
            v.lines.last().map(String::as_str),
            Some("首次查询于6月1日，共被查询 5 次，来自 3 台设备。")
        );
        // Labels that are not genuine get no count.
        let mut fake = facts(ScanVerdict::Counterfeit);
        fake.stats = Some(stats(None));
        assert_eq!(verdict_view(&fake, Lang::En).lines.len(), 1);
    }

    #[test]
    fn a_suspicious_genuine_label_warns_of_a_copy() {
        let mut copied = facts(ScanVerdict::Active);
        copied.stats = Some(stats(Some(Suspicion::ManyDevices)));
        let v = verdict_view(&copied, Lang::En);
        assert_eq!(v.tone, "warn");
        assert_eq!(v.heading, "Genuine · possibly copied");
        assert!(v
            .lines
            .last()
            .is_some_and(|l| l.contains("may have been copied")));
        assert!(v
            .advice
            .as_deref()
            .is_some_and(|a| a.contains("freshly opened")));
        // A recalled batch stays a recall, with its own advice.
        let mut recalled = facts(ScanVerdict::Recalled);
        recalled.stats = Some(stats(Some(Suspicion::OutsideArea)));
        let v = verdict_view(&recalled, Lang::En);
        assert_eq!((v.tone, v.heading.as_str()), ("bad", "Recalled"));
        assert!(v
            .advice
            .as_deref()
            .is_some_and(|a| a.starts_with("Do not eat it.")));
    }
}
