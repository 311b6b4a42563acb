# ext_authz policy for the bookinfo example, in OPA-Envoy's input format.
#
# Rosen evaluates data.envoy.authz.allow (--policy-query) for every request a
# gateway sends it: those selected by an AuthorizationPolicy with
# `action: CUSTOM` and `provider: {name: rosen}` (examples/policy-mesh).
#
#   - anyone may read the product page, the login pages, /static/* and the
#     product API (GET, HEAD);
#   - writing to /api/v1/products (POST, PUT, PATCH, DELETE) needs a verified
#     JWT (input.jwt, from --policy-jwt or a RequestAuthentication) whose
#     `roles` claim holds the editor role in data.json;
#   - everything else is denied with a 403 and the reason in the body.
#
# Match input.canonical_path (percent-decoded, dot segments resolved), not
# the raw path: /productpage/..%2Fadmin is /admin here.
package envoy.authz

import rego.v1

method := input.attributes.request.http.method

path := input.canonical_path

read_methods := {"GET", "HEAD"}

write_methods := {"POST", "PUT", "PATCH", "DELETE"}

products_api if path == "/api/v1/products"

products_api if startswith(path, "/api/v1/products/")

public_page if path in data.bookinfo.public_paths

public_page if startswith(path, "/static/")

editor if data.bookinfo.editor_role in input.jwt.roles

# Why a request is allowed; undefined when it is not.
grant := "public page" if {
	method in read_methods
	public_page
}

grant := "product catalogue read" if {
	method in read_methods
	products_api
}

grant := "product write by an editor" if {
	method in write_methods
	products_api
	editor
}

# Why a request is denied (only the first that applies is used).
default reason := "no rule allows this request"

reason := "writes to /api/v1/products need a token" if {
	method in write_methods
	products_api
	not input.jwt
}

reason := sprintf("writes to /api/v1/products need the %q role", [data.bookinfo.editor_role]) if {
	method in write_methods
	products_api
	input.jwt
	not editor
}

# Fail closed if nothing below applies (it always does; kept as a guard).
default allow := {"allowed": false, "http_status": 403, "body": "denied"}

allow := {
	"allowed": true,
	"headers": {"x-ext-authz-grant": grant},
} if grant

allow := {
	"allowed": false,
	"http_status": 403,
	"body": reason,
	"headers": {"x-ext-authz-reason": reason},
} if not grant
