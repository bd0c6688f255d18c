#pragma once
// Small pure helpers for talking OData to Microsoft Graph: literals, URL encoding, object ids and
// Graph's error body. No I/O; thread-safe.

#include <string>
#include <string_view>

namespace certgate::connectors::graph {

// An OData string literal: quoted with ' and every ' doubled ("O'Brien" -> 'O''Brien').
std::string odataString(std::string_view value);

// Percent-encodes a query parameter value: RFC 3986 unreserved characters stay, everything else
// (space, quote, '&', '+', '=', non-ASCII bytes) becomes %XX, so a $filter survives any server.
std::string encodeQueryValue(std::string_view value);

// An Entra object id: a GUID in its 8-4-4-4-12 hexadecimal form. Only such ids are put into
// request paths, so no id can carry '/', '..' or '?' into a URL.
bool isObjectId(std::string_view text);

// A property path certgate may name in $select/$filter: letters, digits, '_' and one optional
// '/' (a property of a complex property, e.g. onPremisesExtensionAttributes/extensionAttribute1).
bool isPropertyPath(std::string_view text);

// Graph's error body (https://learn.microsoft.com/graph/errors):
// {"error":{"code","message","innerError":{"request-id","date"}}}. Fields are "" when absent or
// when the body is not that shape.
struct GraphErrorBody {
  std::string code;
  std::string message;
  std::string request_id;
};
GraphErrorBody parseGraphError(std::string_view body);

// 400 Request_BadRequest "One or more added object references already exist for the following
// modified properties: 'members'." -- the member is already there.
bool isAlreadyMember(long status, const GraphErrorBody& error);

// 404 Request_ResourceNotFound for the member reference, or 400 "One or more removed object
// references do not exist ..." -- the member is (probably) not there; certgate reads back.
bool isAbsentReference(long status, const GraphErrorBody& error);

}  // namespace certgate::connectors::graph
