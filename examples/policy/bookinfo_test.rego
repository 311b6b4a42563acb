# OPA tests for bookinfo.rego: `rosen policy test examples/policy`
# (or `opa test examples/policy`) runs every test_ rule.
package envoy.authz_test

import rego.v1

import data.envoy.authz

req(method, path) := {
	"attributes": {"request": {"http": {"method": method, "path": path, "host": "bookinfo.example.com", "headers": {}}}},
	"canonical_path": path,
}

with_jwt(method, path, claims) := object.union(req(method, path), {"jwt": claims})

test_productpage_open_to_everyone if {
	authz.allow.allowed with input as req("GET", "/productpage")
	authz.allow.headers["x-ext-authz-grant"] == "public page" with input as req("GET", "/productpage")
}

test_static_open_to_everyone if {
	authz.allow.allowed with input as req("GET", "/static/bootstrap.min.css")
}

test_products_readable_without_token if {
	authz.allow.allowed with input as req("GET", "/api/v1/products/1/reviews")
}

test_product_write_without_token_denied if {
	d := authz.allow with input as req("POST", "/api/v1/products")
	not d.allowed
	d.http_status == 403
	d.body == "writes to /api/v1/products need a token"
}

test_product_write_without_editor_role_denied if {
	d := authz.allow with input as with_jwt("PUT", "/api/v1/products/1", {"sub": "reader", "roles": ["reader"]})
	not d.allowed
	d.body == "writes to /api/v1/products need the \"editor\" role"
}

test_product_write_by_editor_allowed if {
	authz.allow.allowed with input as with_jwt("POST", "/api/v1/products", {"sub": "jason", "roles": ["editor"]})
}

test_prefix_lookalike_denied if {
	# /api/v1/productsX is not the products API
	not authz.allow.allowed with input as with_jwt("POST", "/api/v1/productsX", {"roles": ["editor"]})
}

test_productpage_write_denied if {
	d := authz.allow with input as req("POST", "/productpage")
	not d.allowed
	d.body == "no rule allows this request"
}

test_anything_else_denied if {
	not authz.allow.allowed with input as req("GET", "/admin")
}
