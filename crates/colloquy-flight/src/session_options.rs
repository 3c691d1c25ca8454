//! The Flight core actions arrow-flight 59 has no messages for: SetSessionOptions, GetSessionOptions,
//! CloseSession (protobuf definitions from the Flight spec, written with prost) and CancelFlightInfo.
//! Their bodies are the serialized messages themselves, not `Any`.

use std::collections::HashMap;

/// A session option value; none means "unset".
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionOptionValue {
    #[prost(oneof = "OptionValue", tags = "1, 2, 3, 4, 5")]
    pub option_value: Option<OptionValue>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum OptionValue {
    #[prost(string, tag = "1")]
    StringValue(String),
    #[prost(bool, tag = "2")]
    BoolValue(bool),
    #[prost(sfixed64, tag = "3")]
    Int64Value(i64),
    #[prost(double, tag = "4")]
    DoubleValue(f64),
    #[prost(message, tag = "5")]
    StringListValue(StringList),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StringList {
    #[prost(string, repeated, tag = "1")]
    pub values: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SetSessionOptionsRequest {
    #[prost(map = "string, message", tag = "1")]
    pub session_options: HashMap<String, SessionOptionValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SetSessionOptionsResult {
    #[prost(map = "string, message", tag = "1")]
    pub errors: HashMap<String, SetSessionOptionsError>,
}

/// 1 invalid name, 2 invalid value, 3 error.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SetSessionOptionsError {
    #[prost(int32, tag = "1")]
    pub value: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetSessionOptionsRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetSessionOptionsResult {
    #[prost(map = "string, message", tag = "1")]
    pub session_options: HashMap<String, SessionOptionValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CloseSessionRequest {}

/// 1 closed, 2 closing, 3 not closeable.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CloseSessionResult {
    #[prost(int32, tag = "1")]
    pub status: i32,
}

pub const INVALID_NAME: i32 = 1;
pub const INVALID_VALUE: i32 = 2;
/// The option exists but this client may not set it (the server's limits).
pub const ERROR: i32 = 3;
pub const CLOSED: i32 = 1;

/// The text a value is set to: DataFusion settings are strings.
pub fn value_text(v: &SessionOptionValue) -> Option<String> {
    Some(match v.option_value.as_ref()? {
        OptionValue::StringValue(s) => s.clone(),
        OptionValue::BoolValue(b) => b.to_string(),
        OptionValue::Int64Value(i) => i.to_string(),
        OptionValue::DoubleValue(d) => d.to_string(),
        OptionValue::StringListValue(l) => l.values.join(","),
    })
}

pub fn string_value(s: String) -> SessionOptionValue {
    SessionOptionValue {
        option_value: Some(OptionValue::StringValue(s)),
    }
}
