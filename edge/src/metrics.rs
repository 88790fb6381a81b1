//! Writes each request's data point to Workers Analytics Engine (issue 22
//! item 2; the point's fields are [`crate::request_record`]'s).
//!
//! `writeDataPoint` is fire-and-forget: nothing is awaited. The point is
//! handed over as one JSON text parsed by the runtime (`JSON.parse`), so a
//! request costs three calls into JS (the binding's lookup, the parse, the
//! write) rather than one per field. When the binding is not a dataset but
//! a JS RPC stub (the e2e tests' stand-in, whose method returns a promise),
//! the promise is kept alive with `waitUntil`; a real dataset returns
//! `undefined` and nothing more happens.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::{Context, Env};

#[wasm_bindgen]
extern "C" {
    /// An `AnalyticsEngineDataset` (or anything with its method).
    type Dataset;

    #[wasm_bindgen(method, catch, js_name = writeDataPoint)]
    fn write_data_point(this: &Dataset, point: &JsValue) -> Result<JsValue, JsValue>;
}

/// Writes `point` (`{indexes, blobs, doubles}`) to the dataset bound as
/// `binding`; nothing when no such binding exists. Never fails the request:
/// a refused write is logged.
pub fn write(env: &Env, ctx: &Context, binding: &str, point: impl FnOnce() -> serde_json::Value) {
    let env_value: &JsValue = env.as_ref();
    let Ok(dataset) = js_sys::Reflect::get(env_value, &JsValue::from_str(binding)) else {
        return;
    };
    if dataset.is_undefined() || dataset.is_null() {
        return;
    }
    let written = js_sys::JSON::parse(&point().to_string())
        .and_then(|p| dataset.unchecked_ref::<Dataset>().write_data_point(&p));
    match written {
        Ok(ret) if ret.is_undefined() => {}
        Ok(ret) => {
            // An RPC stub's answer is a thenable (not always a `Promise`):
            // `Promise.resolve` adopts it.
            let promise = js_sys::Promise::resolve(&ret);
            ctx.wait_until(async move {
                let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
            });
        }
        Err(e) => worker::console_error!(
            r#"{{"event":"metrics_write_failed","error":{}}}"#,
            serde_json::Value::from(e.as_string().unwrap_or_else(|| format!("{e:?}")))
        ),
    }
}
