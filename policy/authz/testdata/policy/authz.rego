package envoy.authz

import rego.v1

http_req := input.attributes.request.http

admin_path if startswith(input.canonical_path, "/admin")

has_newline if {
	some _, values in input.parsed_query
	some v in values
	contains(v, "\n")
}

default decision := false

decision if {
	not admin_path
	not has_newline
	http_req.method == "GET"
}

decision if {
	admin_path
	http_req.headers["x-role"] == "admin"
}

decision if {
	http_req.method == "POST"
	not input.truncated_body
	input.parsed_body.path == "/docs/a"
}

default allow := {"allowed": false, "http_status": 403, "body": "forbidden by policy"}

allow := {
	"allowed": true,
	"headers": {"x-policy": "rosen"},
	"response_headers_to_add": {"x-checked": "yes"},
	"request_headers_to_remove": ["x-role"],
} if decision

allow := {"allowed": false, "status_code": 418, "body": "teapot"} if {
	not decision
	input.canonical_path == "/teapot"
}
