namespace HybridBatch.Core

open System

// What the shell knows of a Kubernetes API call and of how it failed: the permission it exercised (verb, group,
// resource, namespace) and the server's or the transport's answer, for `Retry.classify` to decide on.

/// The RBAC verb a Kubernetes API call exercises.
[<RequireQualifiedAccess>]
type Verb =
    | Get
    | List
    | Watch
    | Create
    | Update
    | Patch
    | Delete
    | DeleteCollection
    /// A verb outside the eight resource verbs (e.g. `impersonate`); never assumed safe to repeat.
    | Other of string

/// How a request failed below HTTP, before a status line arrived.
[<RequireQualifiedAccess>]
type TransportFailure =
    /// The connection was refused: the request never reached the server.
    | Refused
    /// The connection was reset or closed mid-exchange: the request may have been applied.
    | Reset
    /// No answer in time: the request may have been applied.
    | Timeout
    /// The server's name did not resolve: the request never left the client.
    | Dns
    /// The TLS handshake failed: a configuration problem (CA, server name, client certificate), not weather.
    | Tls
    /// Any other transport failure: treated as ambiguous.
    | Other

/// The permission a call exercised, as an RBAC Role names it.
type Permission =
    { verb: Verb
      /// The API group; empty for the core group (pods, events).
      group: string
      /// The plural resource name, e.g. `jobs`.
      resource: string
      /// A subresource such as `log` or `status`.
      subresource: string option
      /// The namespace; `None` for a cluster-scoped call.
      inNamespace: string option }

/// One field the API server named as a cause of a rejection (`Status.details.causes`).
type FieldCause =
    { field: string
      reason: string
      message: string }

/// What the shell knows about one failed Kubernetes API call.
type ApiError =
    {
      /// The HTTP status, if a response arrived.
      status: int option
      /// The Kubernetes `Status.reason` (e.g. `AlreadyExists`, `Expired`).
      reason: string option
      /// The Kubernetes `Status.message`.
      message: string option
      /// The Kubernetes `Status.details.causes`.
      causes: FieldCause list
      /// The server's `Retry-After` (header or `Status.details.retryAfterSeconds`).
      retryAfter: TimeSpan option
      /// The transport failure, if no response arrived.
      transport: TransportFailure option
      /// What the call tried to do.
      permission: Permission
      /// The shell made a non-idempotent call safe to repeat (a create with a deterministic name, whose repeat
      /// answers 409 AlreadyExists; a merge patch).
      madeIdempotent: bool }

/// Functions on RBAC verbs.
[<RequireQualifiedAccess>]
module Verb =

    /// The verb as RBAC spells it (`create`, `deletecollection`).
    let name (verb: Verb) : string =
        match verb with
        | Verb.Get -> "get"
        | Verb.List -> "list"
        | Verb.Watch -> "watch"
        | Verb.Create -> "create"
        | Verb.Update -> "update"
        | Verb.Patch -> "patch"
        | Verb.Delete -> "delete"
        | Verb.DeleteCollection -> "deletecollection"
        | Verb.Other other when String.IsNullOrWhiteSpace other -> "unknown-verb"
        | Verb.Other other -> other.Trim().ToLowerInvariant()

    /// Whether repeating the call cannot change the outcome: reads, watches, updates (a repeat with the same
    /// resourceVersion conflicts instead of applying twice) and deletes (a repeat answers 404). Creates and
    /// patches are not, unless the shell makes them so.
    let isIdempotent (verb: Verb) : bool =
        match verb with
        | Verb.Get
        | Verb.List
        | Verb.Watch
        | Verb.Update
        | Verb.Delete
        | Verb.DeleteCollection -> true
        | Verb.Create
        | Verb.Patch
        | Verb.Other _ -> false

    /// The verb of an HTTP request to the API server: its method, whether the path names one object, and
    /// whether it asks for a watch.
    let ofHttp (httpMethod: string | null) (namesObject: bool) (isWatch: bool) : Verb =
        let m =
            match httpMethod with
            | null -> ""
            | text -> text.Trim().ToUpperInvariant()

        match m with
        | "GET"
        | "HEAD" when isWatch -> Verb.Watch
        | "GET"
        | "HEAD" when namesObject -> Verb.Get
        | "GET"
        | "HEAD" -> Verb.List
        | "POST" -> Verb.Create
        | "PUT" -> Verb.Update
        | "PATCH" -> Verb.Patch
        | "DELETE" when namesObject -> Verb.Delete
        | "DELETE" -> Verb.DeleteCollection
        | other -> Verb.Other(other.ToLowerInvariant())

/// Functions on permissions.
[<RequireQualifiedAccess>]
module Permission =

    let private orDefault (fallback: string) (text: string) =
        if String.IsNullOrWhiteSpace text then fallback else text.Trim()

    /// The resource as RBAC and `kubectl auth can-i` name it: `jobs.batch`, `pods/log`, `nodes`.
    let resourceName (permission: Permission) : string =
        let resource = orDefault "unknown-resource" permission.resource

        let grouped =
            if String.IsNullOrWhiteSpace permission.group then
                resource
            else
                resource + "." + permission.group.Trim()

        match permission.subresource with
        | Some sub when not (String.IsNullOrWhiteSpace sub) -> grouped + "/" + sub.Trim()
        | _ -> grouped

    /// Where the permission applies: `in namespace X` or `at cluster scope`.
    let scope (permission: Permission) : string =
        match permission.inNamespace with
        | Some ns when not (String.IsNullOrWhiteSpace ns) -> "in namespace " + ns.Trim()
        | _ -> "at cluster scope"

    /// The permission in words: `create jobs.batch in namespace X`.
    let describe (permission: Permission) : string =
        $"{Verb.name permission.verb} {resourceName permission} {scope permission}"

    /// The Role (or ClusterRole) rule that grants the permission.
    let rule (permission: Permission) : string =
        let resource = orDefault "unknown-resource" permission.resource

        let resource =
            match permission.subresource with
            | Some sub when not (String.IsNullOrWhiteSpace sub) -> resource + "/" + sub.Trim()
            | _ -> resource

        let group = orDefault "" permission.group

        let kind =
            match permission.inNamespace with
            | Some ns when not (String.IsNullOrWhiteSpace ns) -> $"the Role bound in namespace {ns.Trim()}"
            | _ -> "a ClusterRole"

        $"{kind} (apiGroups: [\"{group}\"], resources: [\"{resource}\"], verbs: [\"{Verb.name permission.verb}\"])"
