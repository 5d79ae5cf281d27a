namespace HybridBatch.Core.Api

open System
open System.Numerics
open HybridBatch.Core

/// Amounts written as Kubernetes quantities, read and written by the core's exact parser and formatter.
[<AbstractClass; Sealed>]
type Quantities =
    /// An amount of bytes written as a non-negative Kubernetes quantity (`536870912`, `512Mi`, `1G`, `1.5Gi`),
    /// rounded up to whole bytes; null when the text is not such a quantity.
    static member ParseBytes(text: string) : Nullable<BigInteger> =
        match Quantity.parseNonNegative text with
        | Ok quantity -> Nullable((Quantity.nanos quantity + 999_999_999I) / 1_000_000_000I)
        | Error _ -> Nullable()

    /// An amount of bytes in Kubernetes' canonical binary form: `512Mi`, `1536Mi`, `1k`, `0`.
    static member FormatBytes(bytes: int64) : string =
        Quantity.format (Quantity.ofInt64 BinarySI bytes)
