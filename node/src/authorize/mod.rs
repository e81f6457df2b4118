//! Who may call a method: the authorizers of API Gateway, evaluated at the edge.

pub mod cognito;
