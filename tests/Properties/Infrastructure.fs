namespace HybridBatch.Properties

open System
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open HybridBatch.Core

/// Generators for the retry classifier: plausible API failures and usable back-off policies.
module RetryGenerators =

    let private dnsLabel =
        gen {
            let! length = Gen.choose (1, 12)
            let! chars = Gen.arrayOfLength length (Gen.elements [ 'a' .. 'z' ])
            return String chars
        }

    /// A permission as the shell derives it from a request path.
    let permission: Gen<Permission> =
        gen {
            let! verb =
                Gen.elements
                    [ Verb.Get
                      Verb.List
                      Verb.Watch
                      Verb.Create
                      Verb.Update
                      Verb.Patch
                      Verb.Delete
                      Verb.DeleteCollection
                      Verb.Other "impersonate" ]

            let! group = Gen.elements [ ""; "batch"; "apps"; "metrics.k8s.io" ]
            let! resource = Gen.oneof [ Gen.elements [ "jobs"; "pods"; "nodes"; "events" ]; dnsLabel ]
            let! subresource = Gen.optionOf (Gen.elements [ "log"; "status"; "eviction" ])
            let! inNamespace = Gen.optionOf dnsLabel

            return
                { verb = verb
                  group = group
                  resource = resource
                  subresource = subresource
                  inNamespace = inNamespace }
        }

    /// A non-negative span of up to `maxMs` milliseconds, at tick resolution.
    let span (maxMs: int64) : Gen<TimeSpan> =
        Gen.choose64 (0L, maxMs * TimeSpan.TicksPerMillisecond) |> Gen.map TimeSpan.FromTicks

    let private fieldCause =
        gen {
            let! field = Gen.elements [ "spec.template.spec.containers[0].image"; "metadata.name"; "spec.backoffLimit"; "" ]
            let! reason = Gen.elements [ "FieldValueRequired"; "FieldValueInvalid"; "" ]
            let! message = Gen.elements [ "Required value"; "Invalid value: \"x\""; "" ]

            return
                { field = field
                  reason = reason
                  message = message }
        }

    /// A failure as the API server or the transport produces it.
    let apiError: Gen<ApiError> =
        gen {
            let! status =
                Gen.frequency
                    [ 6,
                      Gen.elements [ 400; 401; 403; 404; 408; 409; 410; 413; 422; 429; 500; 501; 502; 503; 504 ]
                      |> Gen.map Some
                      2, Gen.choose (100, 599) |> Gen.map Some
                      3, Gen.constant None ]

            let! reason =
                Gen.optionOf (
                    Gen.elements
                        [ "AlreadyExists"
                          "Conflict"
                          "Expired"
                          "Gone"
                          "Forbidden"
                          "Invalid"
                          "NotFound"
                          "TooManyRequests"
                          "ServerTimeout" ]
                )

            let! message = Gen.optionOf (Gen.elements [ "jobs.batch \"x\" is forbidden"; "too old resource version"; "boom" ])
            let! causes = Gen.listOf fieldCause
            let! retryAfter = Gen.optionOf (span 120_000L)

            let! transport =
                Gen.optionOf (
                    Gen.elements
                        [ TransportFailure.Refused
                          TransportFailure.Reset
                          TransportFailure.Timeout
                          TransportFailure.Dns
                          TransportFailure.Tls
                          TransportFailure.Other ]
                )

            let! permission = permission
            let! madeIdempotent = Gen.elements [ true; false ]

            return
                { status = status
                  reason = reason
                  message = message
                  causes = causes
                  retryAfter = retryAfter
                  transport = (if status.IsSome then None else transport)
                  permission = permission
                  madeIdempotent = madeIdempotent }
        }

    /// Shrinks a failure by forgetting what it does not need.
    let shrinkApiError (error: ApiError) : ApiError seq =
        seq {
            if error.retryAfter.IsSome then
                yield { error with retryAfter = None }

            if error.message.IsSome then
                yield { error with message = None }

            if not error.causes.IsEmpty then
                yield { error with causes = [] }

            if error.reason.IsSome then
                yield { error with reason = None }
        }

    /// A usable policy: 1 ms to 10 s first delay, a cap up to 10 minutes above it, a budget up to an hour.
    let policy: Gen<BackoffPolicy> =
        gen {
            let! first = span 10_000L |> Gen.map (fun t -> t + TimeSpan.FromMilliseconds 1.0)
            let! extra = span 600_000L
            let! budget = span 3_600_000L

            return
                { firstDelay = first
                  maxDelay = first + extra
                  budget = budget }
        }

    /// Shrinks a policy towards shorter delays and budgets, keeping it usable.
    let shrinkPolicy (p: BackoffPolicy) : BackoffPolicy seq =
        let half (t: TimeSpan) = TimeSpan.FromTicks(t.Ticks / 2L)

        seq {
            if p.budget > TimeSpan.Zero then
                yield { p with budget = half p.budget }

            if p.maxDelay > p.firstDelay then
                yield { p with maxDelay = max p.firstDelay (half p.maxDelay) }

            if p.firstDelay.Ticks > 1L then
                let first = half p.firstDelay
                yield { p with firstDelay = first }
        }

/// Generators that validity needs (label syntax, quantities, event sequences); everything else FsCheck derives.
type Arbs =
    static member Placeholder() = Arb.fromGen (Gen.constant ())

    /// Permissions with plausible RBAC names.
    static member Permission() =
        Arb.fromGen RetryGenerators.permission

    /// API failures as servers and transports produce them.
    static member ApiError() =
        Arb.fromGenShrink (RetryGenerators.apiError, RetryGenerators.shrinkApiError)

    /// Usable back-off policies.
    static member BackoffPolicy() =
        Arb.fromGenShrink (RetryGenerators.policy, RetryGenerators.shrinkPolicy)

/// Every core property runs at least 1,000 cases and prints the failing seed (FsCheck's replay string).
type CorePropertyAttribute() =
    inherit PropertyAttribute(Arbitrary = [| typeof<Arbs> |], MaxTest = 1000, QuietOnSuccess = false)
