namespace HybridBatch.Properties

open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit

/// Generators that validity needs (label syntax, quantities, event sequences); everything else FsCheck derives.
type Arbs =
    static member Placeholder() = Arb.fromGen (Gen.constant ())

/// Every core property runs at least 1,000 cases and prints the failing seed (FsCheck's replay string).
type CorePropertyAttribute() =
    inherit PropertyAttribute(Arbitrary = [| typeof<Arbs> |], MaxTest = 1000, QuietOnSuccess = false)
