//! The home page: what the platform is, how to look up a code, and where the API is.

use actix_web::{get, HttpRequest, HttpResponse};

use super::Lang;

const TEMPLATE: &str = include_str!("../../../web/templates/home.html");

/// The texts of the home page in each language.
fn texts(lang: Lang) -> [(&'static str, &'static str); 8] {
    match lang {
        Lang::Zh => [
            ("lang", "zh-CN"),
            ("title", "溯源 · 农产品质量安全追溯监管平台"),
            ("heading", "农产品质量安全追溯"),
            ("lead", "生产有记录、信息可查询、来源可追溯、流向可追踪、责任可追究、产品可召回、质量有保障。"),
            ("scan", "用手机扫描包装上的二维码，即可查看产品的真伪和从田间到餐桌的全过程。"),
            ("api", "接口文档（OpenAPI）"),
            ("switch", "English"),
            ("switch_lang", "en"),
        ],
        Lang::En => [
            ("lang", "en"),
            ("title", "Suyuan · agricultural product traceability"),
            ("heading", "Agricultural product traceability"),
            ("lead", "Production is recorded, information can be queried, the source traced, the flow tracked, responsibility assigned, the product recalled, quality assured."),
            ("scan", "Scan the QR code on a package with your phone to see whether it is genuine and its whole story from field to table."),
            ("api", "API documentation (OpenAPI)"),
            ("switch", "中文"),
            ("switch_lang", "zh"),
        ],
    }
}

#[get("/")]
pub async fn home(req: HttpRequest) -> HttpResponse {
    let lang = Lang::of(&req);
    let mut page = TEMPLATE.to_owned();
    for (key, value) in texts(lang) {
        page = page.replace(&format!("{{{{{key}}}}}"), value);
    }
    let mut resp = HttpResponse::Ok();
    resp.content_type("text/html; charset=utf-8");
    if let Some(cookie) = Lang::remembered(&req) {
        resp.cookie(cookie);
    }
    resp.body(page)
}
