package api

// QueryParams exposes the query parameters each checking route takes,
// for TestQueryParamsMatchSpec.
var QueryParams = queryParams
