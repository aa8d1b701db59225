//! The cold-store temperatures of a story as small inline SVG line charts: no script, no image request,
//! a few hundred bytes each.

use super::dates::{date, day_month};
use crate::pages::texts::Texts;
use crate::pages::Lang;
use crate::scans::story::ColdStay;

/// A temperature chart.
#[derive(Debug, Clone)]
pub struct ChartView {
    pub caption: String,
    pub svg: String,
    pub summary: String,
}

/// A small line chart of a cold-store stay: the mean per span, the min–max band behind it, and the
/// 0–8 °C cold-chain band, as inline SVG (no script, a few hundred bytes).
pub(super) fn chart(c: &ColdStay, lang: Lang, t: &Texts) -> ChartView {
    const W: f64 = 320.0;
    const H: f64 = 120.0;
    const PAD: f64 = 22.0;
    let lo = c
        .points
        .iter()
        .map(|p| p.1)
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let hi = c
        .points
        .iter()
        .map(|p| p.3)
        .fold(f64::NEG_INFINITY, f64::max)
        .max(10.0);
    let (t0, t1) = (
        c.from.timestamp_millis() as f64,
        c.to.timestamp_millis().max(c.from.timestamp_millis() + 1) as f64,
    );
    let x = |ms: i64| PAD + (ms as f64 - t0) / (t1 - t0) * (W - PAD - 4.0);
    let y = |v: f64| 4.0 + (hi - v) / (hi - lo) * (H - 4.0 - 16.0);
    let mean: Vec<String> = c
        .points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.2)))
        .collect();
    let band: Vec<String> = c
        .points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.3)))
        .chain(
            c.points
                .iter()
                .rev()
                .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1))),
        )
        .collect();
    let svg = format!(
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{label}\">\
<rect x=\"{PAD}\" y=\"{y8:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"#e3f2fd\"/>\
<polygon points=\"{band}\" fill=\"#90caf9\" opacity=\".5\"/>\
<polyline points=\"{mean}\" fill=\"none\" stroke=\"#1565c0\" stroke-width=\"1.6\"/>\
<text x=\"0\" y=\"{ty8:.1}\" font-size=\"9\" fill=\"#5a6b5a\">8℃</text>\
<text x=\"0\" y=\"{ty0:.1}\" font-size=\"9\" fill=\"#5a6b5a\">0℃</text>\
<text x=\"{PAD}\" y=\"{H}\" font-size=\"9\" fill=\"#5a6b5a\">{d0}</text>\
<text x=\"{W}\" y=\"{H}\" font-size=\"9\" fill=\"#5a6b5a\" text-anchor=\"end\">{d1}</text></svg>",
        label = t.temperatures,
        y8 = y(8.0),
        bw = W - PAD - 4.0,
        bh = y(0.0) - y(8.0),
        band = band.join(" "),
        mean = mean.join(" "),
        ty8 = y(8.0) + 3.0,
        ty0 = y(0.0) + 3.0,
        d0 = day_month(c.from, lang),
        d1 = day_month(c.to, lang),
    );
    let min = c.points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let max = c
        .points
        .iter()
        .map(|p| p.3)
        .fold(f64::NEG_INFINITY, f64::max);
    ChartView {
        caption: format!(
            "{} · {} {} – {}",
            c.site,
            c.lot_code,
            date(c.from, lang),
            date(c.to, lang)
        ),
        svg,
        summary: format!("{} {:.1}–{:.1} ℃", t.temp_range, min, max),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, TimeZone, Utc};

    use super::chart;
    use crate::pages::{texts, Lang};
    use crate::scans::story::ColdStay;

    fn from() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
    }

    fn stay(points: Vec<(i64, f64, f64, f64)>) -> ColdStay {
        ColdStay {
            site: "华宁冷库".into(),
            lot_code: "HN-2026-01".into(),
            from: from(),
            to: from() + Duration::hours(10),
            points,
        }
    }

    /// The `points` attribute of the element `tag` in `svg`.
    fn points<'a>(svg: &'a str, tag: &str) -> &'a str {
        let start = svg.find(&format!("<{tag} points=\"")).unwrap() + tag.len() + 10;
        let len = svg[start..].find('"').unwrap();
        &svg[start..start + len]
    }

    #[test]
    fn one_point_sits_at_the_left_edge_on_the_0_to_10_scale() {
        let ms = from().timestamp_millis();
        let c = chart(&stay(vec![(ms, 2.0, 4.0, 6.0)]), Lang::En, &texts::EN);
        // x: the left padding; y: 4 + (10 - v) / 10 × 100.
        assert_eq!(points(&c.svg, "polyline"), "22.0,64.0");
        assert_eq!(points(&c.svg, "polygon"), "22.0,44.0 22.0,84.0");
        // The 0–8 °C band: from y(8) = 24 down to y(0) = 104.
        assert!(
            c.svg
                .contains("<rect x=\"22\" y=\"24.0\" width=\"294.0\" height=\"80.0\""),
            "{}",
            c.svg
        );
        assert!(c.svg.starts_with(
            "<svg viewBox=\"0 0 320 120\" role=\"img\" aria-label=\"Cold-store temperature\">"
        ));
        assert!(c.svg.contains(">1 Jun</text>"), "{}", c.svg);
        assert_eq!(c.summary, "Range 2.0–6.0 ℃");
        assert_eq!(c.caption, "华宁冷库 · HN-2026-01 1 Jun 2026 – 1 Jun 2026");
    }

    #[test]
    fn the_scale_widens_to_the_readings_beyond_0_and_10() {
        let ms = from().timestamp_millis();
        let half = (Duration::hours(5)).num_milliseconds();
        let c = chart(
            &stay(vec![(ms, -2.0, 0.0, 1.0), (ms + half, 3.0, 5.0, 12.0)]),
            Lang::Zh,
            &texts::ZH,
        );
        // lo = -2, hi = 12: y(v) = 4 + (12 - v) / 14 × 100; the second point halfway across.
        assert_eq!(points(&c.svg, "polyline"), "22.0,89.7 169.0,54.0");
        assert_eq!(
            points(&c.svg, "polygon"),
            "22.0,82.6 169.0,4.0 169.0,68.3 22.0,104.0"
        );
        assert_eq!(c.summary, "温度范围 -2.0–12.0 ℃");
        assert!(c.svg.contains(">6月1日</text>"), "{}", c.svg);
    }

    #[test]
    fn no_points_draw_an_empty_line_on_the_0_to_10_scale() {
        let c = chart(&stay(Vec::new()), Lang::En, &texts::EN);
        assert_eq!(points(&c.svg, "polyline"), "");
        assert_eq!(points(&c.svg, "polygon"), "");
        assert!(
            c.svg.contains("y=\"24.0\" width=\"294.0\" height=\"80.0\""),
            "{}",
            c.svg
        );
    }

    #[test]
    fn a_stay_of_no_length_does_not_divide_by_zero() {
        let mut s = stay(vec![(from().timestamp_millis(), 1.0, 2.0, 3.0)]);
        s.to = s.from;
        let c = chart(&s, Lang::En, &texts::EN);
        assert_eq!(points(&c.svg, "polyline"), "22.0,84.0");
    }
}
