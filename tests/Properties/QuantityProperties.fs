namespace HybridBatch.Properties

open System
open System.Numerics
open FsCheck
open FsCheck.FSharp
open HybridBatch.Core

/// A quantity string built from its grammar's parts: `sign whole [. fraction] suffix`.
type QuantityText =
    { sign: string
      whole: string
      fraction: string option
      suffix: string }

    /// The string as written.
    member this.Text =
        this.sign
        + this.whole
        + (this.fraction |> Option.map (fun f -> "." + f) |> Option.defaultValue "")
        + this.suffix

/// The exact value of a quantity string, computed as a fraction from the grammar's parts, independently of the core.
module QuantityOracle =

    let private decimalPowers =
        Map.ofList [ "n", -9; "u", -6; "m", -3; "", 0; "k", 3; "M", 6; "G", 9; "T", 12; "P", 15; "E", 18 ]

    let private binaryPowers =
        Map.ofList [ "Ki", 1; "Mi", 2; "Gi", 3; "Ti", 4; "Pi", 5; "Ei", 6 ]

    /// The value as numerator / denominator.
    let value (text: QuantityText) : bigint * bigint =
        let fraction = defaultArg text.fraction ""
        let digits = text.whole + fraction
        let coefficient = if digits = "" then 0I else BigInteger.Parse digits
        let signed = if text.sign = "-" then -coefficient else coefficient
        let denominator = BigInteger.Pow(10I, fraction.Length)

        match decimalPowers.TryFind text.suffix, binaryPowers.TryFind text.suffix with
        | Some power, _ when power >= 0 -> signed * BigInteger.Pow(10I, power), denominator
        | Some power, _ -> signed, denominator * BigInteger.Pow(10I, -power)
        | None, Some power -> signed * BigInteger.Pow(1024I, power), denominator
        | None, None ->
            let exponent = int (text.suffix.Substring 1)

            if exponent >= 0 then
                signed * BigInteger.Pow(10I, exponent), denominator
            else
                signed, denominator * BigInteger.Pow(10I, -exponent)

    /// Rounded away from zero to whole nanos, as Kubernetes rounds.
    let nanos (text: QuantityText) : bigint =
        let numerator, denominator = value text
        let scaled = BigInteger.Abs numerator * BigInteger.Pow(10I, 9)
        let magnitude = BigInteger.Divide(scaled + denominator - 1I, denominator)
        if numerator.Sign < 0 then -magnitude else magnitude

    /// Whether the exact value fits Kubernetes' range of 2^63 - 1 in magnitude.
    let inRange (text: QuantityText) =
        let numerator, denominator = value text
        BigInteger.Abs numerator <= BigInteger Int64.MaxValue * denominator

/// Quantity strings of every grammatical shape, with exponents small enough for the oracle.
module QuantityTextGen =

    let private digits min max =
        gen {
            let! length = Gen.choose (min, max)
            let! ds = Gen.sequenceToList (List.replicate length (Gen.elements [ '0' .. '9' ]))
            return String(Array.ofList ds)
        }

    let private suffix =
        Gen.frequency
            [ 4, Gen.elements [ "n"; "u"; "m"; ""; "k"; "M"; "G"; "T"; "P"; "E" ]
              3, Gen.elements [ "Ki"; "Mi"; "Gi"; "Ti"; "Pi"; "Ei" ]
              2,
              gen {
                  let! e = Gen.elements [ "e"; "E" ]
                  let! sign = Gen.elements [ ""; "+"; "-" ]
                  let! exponent = digits 1 2
                  return e + sign + exponent
              } ]

    /// A string the grammar accepts.
    let text: Gen<QuantityText> =
        gen {
            let! sign = Gen.frequency [ 4, Gen.constant ""; 1, Gen.constant "+"; 2, Gen.constant "-" ]
            let! whole = Gen.frequency [ 1, Gen.constant ""; 6, digits 1 4; 2, digits 5 21 ]
            let! fraction = Gen.frequency [ 3, Gen.constant None; 2, digits 0 12 |> Gen.map Some ]
            let! suffix = suffix

            let whole, fraction =
                if whole = "" && (defaultArg fraction "") = "" then "0", fraction else whole, fraction

            return
                { sign = sign
                  whole = whole
                  fraction = fraction
                  suffix = suffix }
        }

    /// Fewer digits, no sign, no fraction, no suffix.
    let shrink (t: QuantityText) : seq<QuantityText> =
        seq {
            if t.sign <> "" then
                yield { t with sign = "" }

            if t.suffix <> "" then
                yield { t with suffix = "" }

            if t.fraction.IsSome then
                yield { t with fraction = None }

            if t.whole.Length > 1 then
                yield { t with whole = t.whole.Substring 1 }
        }

    let arb = Arb.fromGenShrink (text, shrink)

    /// Strings that are no Kubernetes quantity.
    let malformed: Gen<string> =
        Gen.elements
            [ ""
              "-"
              "+"
              "."
              "NaN"
              "nan"
              "Inf"
              "+Inf"
              "-Infinity"
              "∞"
              "1Z"
              "1e"
              "1E+"
              "1e1.5"
              "1.2.3"
              " 1"
              "1 "
              "1 k"
              "1ki"
              "1KI"
              "1K"
              "1mi"
              "--1"
              "+-1"
              "0x10"
              "1_000"
              "1,5"
              "1e99999999999"
              "99999999999999999999"
              "9223372036854775808"
              "8Ei"
              "-8Ei"
              "10E"
              "1e19"
              "1Gi1" ]

/// Quantities: parse and format are exact inverses on canonical strings, preserve order, lose no byte, and turn
/// every invalid string into an error value.
module QuantityProperties =

    let private parsed (text: string) =
        match Quantity.parse text with
        | Ok q -> q
        | Error e -> failwith e.Message

    [<CoreProperty>]
    let ``formatting then parsing gives back the same quantity`` (q: Quantity) =
        let text = Quantity.format q

        match Quantity.parse text with
        | Ok back -> Prop.label $"%s{text} parsed back to %A{back}" (back = q)
        | Error e -> Prop.label e.Message false

    [<CoreProperty>]
    let ``parsing then formatting gives a canonical string that formats to itself`` () =
        Prop.forAll QuantityTextGen.arb (fun text ->
            match Quantity.parse text.Text with
            | Error e -> Prop.label $"%s{text.Text}: %s{e.Message}" (not (QuantityOracle.inRange text))
            | Ok q ->
                let canonical = Quantity.format q
                let again = parsed canonical

                Prop.label $"%s{text.Text} → %s{canonical} reparses to the same quantity" (again = q)
                .&. Prop.label $"%s{canonical} is a fixed point" (Quantity.format again = canonical))

    [<CoreProperty>]
    let ``parsing gives the exact value of the written number rounded up to whole nanos`` () =
        Prop.forAll QuantityTextGen.arb (fun text ->
            match Quantity.parse text.Text with
            | Ok q ->
                Prop.label $"%s{text.Text} in range" (QuantityOracle.inRange text)
                .&. Prop.label
                        $"%s{text.Text} is %A{QuantityOracle.nanos text}n, parsed %A{Quantity.nanos q}n"
                        (Quantity.nanos q = QuantityOracle.nanos text)
            | Error(QuantityOutOfRange _) -> Prop.label $"%s{text.Text} out of range" (not (QuantityOracle.inRange text))
            | Error e -> Prop.label e.Message false)

    [<CoreProperty>]
    let ``parsing preserves numeric order`` () =
        let inRange = Arb.filter QuantityOracle.inRange QuantityTextGen.arb

        Prop.forAll (Arb.zip (inRange, inRange)) (fun (a, b) ->
            let na, da = QuantityOracle.value a
            let nb, db = QuantityOracle.value b
            let exact = compare (na * db) (nb * da)
            let qa, qb = Quantity.nanos (parsed a.Text), Quantity.nanos (parsed b.Text)

            Prop.label
                $"%s{a.Text} vs %s{b.Text}: exact order %d{exact}, parsed %A{qa} vs %A{qb}"
                (match exact with
                 | 0 -> qa = qb
                 | c when c < 0 -> qa <= qb
                 | _ -> qa >= qb))

    [<CoreProperty>]
    let ``formatting is monotone`` (a: Quantity) (b: Quantity) =
        let low, high = if Quantity.nanos a <= Quantity.nanos b then a, b else b, a
        Quantity.nanos (parsed (Quantity.format low)) <= Quantity.nanos (parsed (Quantity.format high))

    [<CoreProperty>]
    let ``every byte count below 2^63 survives formatting and parsing exactly`` () =
        let bytes =
            Gen.oneof
                [ Gen.choose64 (0L, Int64.MaxValue)
                  Gen.choose64 (0L, 1L <<< 40)
                  Gen.choose (0, 62) |> Gen.map (fun p -> 1L <<< p)
                  Gen.elements [ 0L; 1L; 1023L; 1024L; 999_999_999_999L; Int64.MaxValue; Int64.MaxValue - 1L ] ]

        Prop.forAll (Arb.fromGen (Gen.zip bytes (Gen.elements [ DecimalSI; BinarySI; DecimalExponent ]))) (fun (n, format) ->
            let text = Quantity.format (Quantity.ofInt64 format n)
            Prop.label $"%d{n} as %s{text}" (Quantity.toInt64 (parsed text) = Some n))

    [<CoreProperty>]
    let ``parsing any string returns a result and never throws`` (chars: char list) =
        let text = String(Array.ofList chars)
        let mutated = [ text; "1" + text; text + "Gi"; "1." + text; "-" + text; "1e" + text ]

        mutated
        |> List.map (fun s ->
            Prop.label s (
                match Quantity.parse s with
                | Ok q -> Quantity.format q <> ""
                | Error e -> e.Message <> ""
            ))
        |> List.reduce (.&.)

    [<CoreProperty>]
    let ``malformed quantity strings are errors`` () =
        Prop.forAll (Arb.fromGen QuantityTextGen.malformed) (fun text ->
            match Quantity.parse text with
            | Ok q -> Prop.label $"\"%s{text}\" parsed as %s{Quantity.format q}" false
            | Error e -> Prop.label $"\"%s{text}\": %s{e.Message}" (e.Message.Length > 0))

    [<CoreProperty>]
    let ``negative quantities are refused where only non-negative ones make sense`` () =
        Prop.forAll QuantityTextGen.arb (fun text ->
            let positive = { text with sign = "" }
            let negative = { text with sign = "-" }
            let isZero = (fst (QuantityOracle.value positive)).IsZero

            match Quantity.parseNonNegative negative.Text, Quantity.parseNonNegative positive.Text with
            | _, Error(QuantityOutOfRange _) -> Prop.label "out of range" (not (QuantityOracle.inRange positive))
            | Error(NegativeQuantity _), Ok _ -> Prop.label "negative refused" (not isZero)
            | Ok _, Ok _ -> Prop.label "-0 accepted" isZero
            | negativeResult, positiveResult ->
                Prop.label $"%s{text.Text}: %A{negativeResult} / %A{positiveResult}" false)

    [<CoreProperty>]
    let ``finite floats are exact and NaN and infinities are errors`` (value: float) =
        match Quantity.ofFloat DecimalSI value with
        | Error(NotFiniteNumber _) -> Prop.label "not finite" (not (Double.IsFinite value))
        | Error(QuantityOutOfRange _) -> Prop.label "out of range" (abs value >= 9.223372036854775808e18)
        | Error e -> Prop.label e.Message false
        | Ok q ->
            let written = value.ToString("R", Globalization.CultureInfo.InvariantCulture)
            Prop.label $"%s{written}" (Quantity.parse written |> Result.map Quantity.nanos = Ok(Quantity.nanos q))
