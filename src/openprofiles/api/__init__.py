"""HTTP only: routes, request and response bodies, authentication, error mapping."""
