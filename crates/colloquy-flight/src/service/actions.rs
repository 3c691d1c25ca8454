//! The custom actions, in one table: `ListActions` reads it and `DoAction` dispatches through it, so a new
//! action is one entry in [`ACTIONS`] and the function it names. (CreatePreparedStatement and
//! ClosePreparedStatement are Flight SQL's own and arrive through [`FlightSqlService`].)

use std::collections::HashMap;

use arrow_flight::Action;
use futures::future::BoxFuture;
use prost::Message;
use prost::bytes::Bytes;
use tonic::{Request, Status};

use super::query::Caller;
use super::{ColloquyFlightSql, poisoned};
use crate::auth::Principal;
use crate::error::Error;
use crate::redact::is_secret_name;
use crate::session_options as so;

/// What an action is called with: its body and who sent it.
pub(super) struct Call {
    /// The caller's session.
    key: String,
    /// Who owns the caller's handles (see [`ColloquyFlightSql::owner`]).
    owner: String,
    principal: Principal,
    caller: Caller,
    body: Bytes,
}

type Run = for<'a> fn(&'a ColloquyFlightSql, Call) -> BoxFuture<'a, Result<Vec<u8>, Status>>;

pub(super) struct CustomAction {
    name: &'static str,
    description: &'static str,
    run: Run,
}

pub(super) const ACTIONS: &[CustomAction] = &[
    CustomAction {
        name: "SetSessionOptions",
        description: "Set session options (DataFusion settings; 'catalog' and 'schema').",
        run: |s, c| Box::pin(s.set_session_options(c)),
    },
    CustomAction {
        name: "GetSessionOptions",
        description: "Get the session's options.",
        run: |s, c| Box::pin(s.get_session_options(c)),
    },
    CustomAction {
        name: "CloseSession",
        description: "Close the session and drop its temporary tables and views.",
        run: |s, c| Box::pin(s.close_session(c)),
    },
    CustomAction {
        name: "CancelFlightInfo",
        description: "Cancel a query by its FlightInfo.",
        run: |s, c| Box::pin(s.cancel_flight_info(c)),
    },
];

/// `ListActions`' entries for the custom actions.
pub(super) fn list() -> Vec<Result<arrow_flight::ActionType, Status>> {
    ACTIONS
        .iter()
        .map(|a| {
            Ok(arrow_flight::ActionType {
                r#type: a.name.to_owned(),
                description: a.description.to_owned(),
            })
        })
        .collect()
}

impl ColloquyFlightSql {
    /// Runs the custom action a `DoAction` names.
    pub(super) async fn custom_action(&self, request: Request<Action>) -> Result<Vec<u8>, Status> {
        let key = Self::session_key(&request);
        let owner = Self::owner(&request);
        let principal = Self::principal(&request);
        let caller = Self::caller(&request);
        let action = request.into_inner();
        let Some(entry) = ACTIONS.iter().find(|a| a.name == action.r#type) else {
            let names: Vec<&str> = ACTIONS.iter().map(|a| a.name).collect();
            return Err(Status::unimplemented(format!(
                "unknown action '{}': this server supports CreatePreparedStatement, ClosePreparedStatement, {}",
                action.r#type,
                names.join(", ")
            )));
        };
        let call = Call {
            key,
            owner,
            principal,
            caller,
            body: action.body,
        };
        (entry.run)(self, call).await
    }

    async fn set_session_options(&self, call: Call) -> Result<Vec<u8>, Status> {
        let req = so::SetSessionOptionsRequest::decode(call.body)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let session = self.session(&call.key, &call.principal.user).await?;
        let mut errors = HashMap::new();
        for (name, value) in req.session_options {
            let setting = match name.as_str() {
                // The keys ADBC uses for the current catalog and schema.
                "catalog" => "datafusion.catalog.default_catalog".to_owned(),
                "schema" => "datafusion.catalog.default_schema".to_owned(),
                other => other.to_owned(),
            };
            // A name is a dotted identifier, never SQL: it is spliced into a SET statement.
            if setting.is_empty()
                || !setting
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            {
                errors.insert(
                    name,
                    so::SetSessionOptionsError {
                        value: so::INVALID_NAME,
                    },
                );
                continue;
            }
            let sql = match so::value_text(&value) {
                Some(v) => format!("SET {setting} = '{}'", v.replace('\'', "''")),
                None => format!("RESET {setting}"),
            };
            // The same way in as a SET statement: the gate's rules and limits apply.
            let result = match self
                .plan_sql(&call.caller, "set", &call.owner, &session, &sql)
                .await
            {
                Ok(plan) => self.run_command(&session.ctx, plan).await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                let text = e.to_string();
                let code = if matches!(e, Error::PermissionDenied(_)) {
                    so::ERROR
                } else if text.contains("not found") || text.contains("Unrecognized") {
                    so::INVALID_NAME
                } else {
                    so::INVALID_VALUE
                };
                errors.insert(name, so::SetSessionOptionsError { value: code });
            }
        }
        Ok(so::SetSessionOptionsResult { errors }.encode_to_vec())
    }

    async fn get_session_options(&self, call: Call) -> Result<Vec<u8>, Status> {
        let session = self.session(&call.key, &call.principal.user).await?;
        let state = session.ctx.state();
        let options = state.config().options();
        let mut session_options: HashMap<String, so::SessionOptionValue> = options
            .entries()
            .into_iter()
            .filter_map(|e| {
                e.value.map(|v| {
                    let v = if is_secret_name(&e.key) {
                        "***".to_owned()
                    } else {
                        v
                    };
                    (e.key, so::string_value(v))
                })
            })
            .collect();
        session_options.insert(
            "catalog".into(),
            so::string_value(options.catalog.default_catalog.clone()),
        );
        session_options.insert(
            "schema".into(),
            so::string_value(options.catalog.default_schema.clone()),
        );
        Ok(so::GetSessionOptionsResult { session_options }.encode_to_vec())
    }

    async fn close_session(&self, call: Call) -> Result<Vec<u8>, Status> {
        let key = call.key;
        self.sessions.lock().await.remove(&key);
        // The session's token ends with it.
        if let Some(token) = &call.principal.token {
            self.options.auth.revoke(token);
        }
        // Its parked results and prepared statements go with it.
        self.tickets
            .lock()
            .map_err(|_| poisoned())?
            .retain(|_, t| t.session != key);
        self.prepared
            .lock()
            .map_err(|_| poisoned())?
            .retain(|_, p| p.session != key);
        Ok(so::CloseSessionResult { status: so::CLOSED }.encode_to_vec())
    }

    async fn cancel_flight_info(&self, call: Call) -> Result<Vec<u8>, Status> {
        let req = arrow_flight::CancelFlightInfoRequest::decode(call.body)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let status = self.cancel(req.info.as_ref(), &call.owner)?;
        Ok(arrow_flight::CancelFlightInfoResult::new(status).encode_to_vec())
    }
}
