//! The OpenAPI 3.1 description of `vigil serve`'s API, generated from the
//! handlers' annotations (utoipa), served at `/api/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::api;

#[derive(OpenApi)]
#[openapi(
    info(title = "Vigil server API", description = "Jobs of a `vigil serve` engine: submit, list, inspect and stop continuous SQL queries."),
    paths(api::list, api::submit, api::status, api::stop, api::results, api::logs, api::series),
    components(schemas(api::Submit, api::ApiError, api::SeriesOut, super::jobs::JobInfo, super::jobs::JobState, super::results::Results)),
    modifiers(&BearerToken),
    security(("token" = []))
)]
struct ApiDoc;

/// The bearer token of a server started with `--token`.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document, as JSON.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
