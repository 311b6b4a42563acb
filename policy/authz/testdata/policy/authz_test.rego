package envoy.authz_test

import rego.v1

import data.envoy.authz

test_get_allowed if {
	authz.allow.allowed with input as {"attributes": {"request": {"http": {"method": "GET"}}}, "canonical_path": "/people", "parsed_query": {}}
}

test_admin_denied_without_role if {
	not authz.allow.allowed with input as {"attributes": {"request": {"http": {"method": "GET", "headers": {}}}}, "canonical_path": "/admin", "parsed_query": {}}
}
