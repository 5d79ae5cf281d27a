namespace HybridBatch.Core

open System
open System.Globalization
open System.Numerics

/// How a quantity is written, as Kubernetes remembers it between parsing and formatting.
type QuantityFormat =
    /// Powers of ten with SI suffixes: n, u, m, (none), k, M, G, T, P, E.
    | DecimalSI
    /// Powers of 1024: Ki, Mi, Gi, Ti, Pi, Ei.
    | BinarySI
    /// Scientific notation: 1e3, 1500e-6.
    | DecimalExponent

/// An exact Kubernetes quantity: a whole number of nano-units (Kubernetes' finest precision) and the format it is
/// written in. Values are bounded by Kubernetes' documented limit of 2^63 - 1 in magnitude. The format is kept
/// normalised: `BinarySI` only for nonzero multiples of 1Ki and `DecimalExponent` only when it prints an exponent,
/// so that every quantity has exactly one canonical string and parsing that string gives the quantity back.
/// The one visible difference from the API server: a binary-format value that is not a multiple of 1Ki is written
/// in decimal canonical form ("1.953125Ki" → "2k" where the API server echoes "2000"); the value is the same, and
/// the API server's own form would not survive a second parse and format.
type Quantity =
    private
        { nanos: bigint
          format: QuantityFormat }

/// Why a quantity could not be read or made; `Message` says what was wrong and how to fix it.
type QuantityError =
    /// The string was empty.
    | EmptyQuantity
    /// The string does not follow the grammar `[+-]digits[.digits][suffix]`.
    | MalformedQuantity of input: string * reason: string
    /// The number is followed by something that is not a Kubernetes suffix.
    | UnknownSuffix of input: string * suffix: string
    /// The value exceeds Kubernetes' limit of 2^63 - 1 in magnitude.
    | QuantityOutOfRange of input: string
    /// A negative value where only values ≥ 0 make sense.
    | NegativeQuantity of input: string
    /// NaN or an infinity, which no quantity can represent.
    | NotFiniteNumber of value: float

    /// What was wrong and how to fix it.
    member this.Message =
        match this with
        | EmptyQuantity -> "The quantity is empty. Write a number such as \"1\", \"1500m\" or \"2Gi\"."
        | MalformedQuantity(input, reason) ->
            $"The quantity \"%s{input}\" is malformed: %s{reason}. Write [+|-]digits[.digits] followed by an optional suffix, such as \"1.5\", \"500m\", \"2Gi\" or \"1e3\"."
        | UnknownSuffix(input, suffix) ->
            $"The quantity \"%s{input}\" has the unknown suffix \"%s{suffix}\". Use one of n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or a decimal exponent such as e3."
        | QuantityOutOfRange input ->
            $"The quantity \"%s{input}\" is larger than Kubernetes allows (2^63 - 1 in magnitude). Request a smaller amount."
        | NegativeQuantity input -> $"The quantity \"%s{input}\" is negative. Request zero or more."
        | NotFiniteNumber value ->
            $"The number %s{value.ToString(CultureInfo.InvariantCulture)} is not finite. Request a finite amount."

/// Parsing, formatting and arithmetic of exact Kubernetes quantities.
[<RequireQualifiedAccess>]
module Quantity =

    let private nanosPerUnit = BigInteger.Pow(10I, 9)

    let private binaryUnitNanos = 1024I * nanosPerUnit

    /// The largest magnitude Kubernetes allows, 2^63 - 1, in nano-units.
    let maxNanos: bigint = BigInteger(Int64.MaxValue) * nanosPerUnit

    let private decimalSuffixes =
        [ "n", -9; "u", -6; "m", -3; "", 0; "k", 3; "M", 6; "G", 9; "T", 12; "P", 15; "E", 18 ]

    let private binarySuffixes = [ "", 0; "Ki", 1; "Mi", 2; "Gi", 3; "Ti", 4; "Pi", 5; "Ei", 6 ]

    let private ceilDiv (numerator: bigint) (denominator: bigint) =
        BigInteger.Divide(numerator + denominator - 1I, denominator)

    let private trailingZeros (value: bigint) =
        let rec count (v: bigint) n =
            if (v % 10I).IsZero then count (v / 10I) (n + 1) else n

        count (BigInteger.Abs value) 0

    let private floorDiv (a: int) (b: int) =
        let q = a / b
        if a % b <> 0 && (a < 0) <> (b < 0) then q - 1 else q

    /// The mantissa and power of ten (a multiple of 3) Kubernetes' canonical decimal form uses for nonzero nanos.
    let private canonicalDecimal (nanos: bigint) =
        let exponent = floorDiv (trailingZeros nanos - 9) 3 * 3
        nanos / BigInteger.Pow(10I, exponent + 9), exponent

    let private normalise format (nanos: bigint) =
        if nanos.IsZero then
            DecimalSI
        else
            match format with
            | BinarySI when not (nanos % binaryUnitNanos).IsZero -> DecimalSI
            | DecimalExponent when snd (canonicalDecimal nanos) = 0 -> DecimalSI
            | BinarySI
            | DecimalExponent
            | DecimalSI -> format

    let private make format (nanos: bigint) =
        { nanos = nanos
          format = normalise format nanos }

    /// Zero, written "0".
    let zero: Quantity = make DecimalSI 0I

    /// The value in nano-units (1 = 10^-9).
    let nanos (quantity: Quantity) : bigint = quantity.nanos

    /// The format the quantity is written in.
    let formatOf (quantity: Quantity) : QuantityFormat = quantity.format

    /// Makes a quantity of `nanos` nano-units, or an error when it exceeds 2^63 - 1 in magnitude.
    let ofNanos (format: QuantityFormat) (nanos: bigint) : Result<Quantity, QuantityError> =
        if BigInteger.Abs nanos > maxNanos then
            Error(QuantityOutOfRange(nanos.ToString() + "n"))
        else
            Ok(make format nanos)

    /// A whole number of units; every int64 is representable, so this cannot fail.
    let ofInt64 (format: QuantityFormat) (value: int64) : Quantity = make format (BigInteger value * nanosPerUnit)

    /// The value as a whole number, when it is one.
    let toInt64 (quantity: Quantity) : int64 option =
        if (quantity.nanos % nanosPerUnit).IsZero then
            Some(int64 (quantity.nanos / nanosPerUnit))
        else
            None

    /// Rounds away from zero to whole thousandths, as Kubernetes does for CPU (so a positive amount never becomes 0).
    let roundUpToMillis (quantity: Quantity) : Quantity =
        let milli = BigInteger.Pow(10I, 6)
        let magnitude = ceilDiv (BigInteger.Abs quantity.nanos) milli * milli
        // The limit 2^63 - 1 is a whole number, so rounding up never leaves the range.
        make quantity.format (if quantity.nanos.Sign < 0 then -magnitude else magnitude)

    let private isDigit c = c >= '0' && c <= '9'

    let private digitsAt (s: string) start =
        let mutable i = start

        while i < s.Length && isDigit s[i] do
            i <- i + 1

        s.Substring(start, i - start)

    let private parseExponent (input: string) (suffix: string) =
        let body = suffix.Substring 1
        let unsigned = if body.StartsWith '+' || body.StartsWith '-' then body.Substring 1 else body

        if unsigned.Length = 0 || not (String.forall isDigit unsigned) then
            Error(UnknownSuffix(input, suffix))
        else
            let value = BigInteger.Parse(unsigned, CultureInfo.InvariantCulture)
            let signed = if body.StartsWith '-' then -value else value

            if BigInteger.Abs signed > BigInteger(Int32.MaxValue / 2) then
                Error(
                    MalformedQuantity(
                        input,
                        $"the exponent %s{body} is outside ±%d{Int32.MaxValue / 2}"
                    )
                )
            else
                Ok(int signed)

    /// Decimal value digits·10^exponent rounded away from zero to nanos, or None when out of range.
    let private decimalNanos (coefficient: bigint) (significantDigits: int) (exponent: int) =
        if coefficient.IsZero then Some 0I
        elif significantDigits + exponent > 20 then None
        elif exponent + 9 >= 0 then Some(coefficient * BigInteger.Pow(10I, exponent + 9))
        elif significantDigits + exponent + 9 <= 0 then Some 1I
        else Some(ceilDiv coefficient (BigInteger.Pow(10I, -(exponent + 9))))

    /// Parses a Kubernetes quantity string (`[+|-]digits[.digits][suffix]`, suffix one of n u m k M G T P E,
    /// Ki Mi Gi Ti Pi Ei, or e/E followed by a signed integer). Like the API server, it rounds a value finer than
    /// 1n away from zero to whole nanos; unlike the API server, which silently caps binary values, a magnitude
    /// above 2^63 - 1 is an error.
    let parse (input: string) : Result<Quantity, QuantityError> =
        if input.Length = 0 then
            Error EmptyQuantity
        else
            let negative = input[0] = '-'
            let signLength = if input[0] = '-' || input[0] = '+' then 1 else 0
            let whole = digitsAt input signLength
            let afterWhole = signLength + whole.Length
            let hasPoint = afterWhole < input.Length && input[afterWhole] = '.'
            let fraction = if hasPoint then digitsAt input (afterWhole + 1) else ""
            let suffixStart = afterWhole + (if hasPoint then 1 + fraction.Length else 0)
            let suffix = input.Substring suffixStart

            if whole.Length + fraction.Length = 0 then
                Error(MalformedQuantity(input, "it has no digits before its suffix"))
            else
                let suffixScale =
                    match List.tryFind (fun (s, _) -> s = suffix) decimalSuffixes with
                    | Some(_, exponent) -> Ok(DecimalSI, exponent, 0)
                    | None ->
                        match List.tryFind (fun (s, _) -> s = suffix) binarySuffixes with
                        | Some(_, power) -> Ok(BinarySI, 0, power)
                        | None when suffix.Length > 1 && (suffix[0] = 'e' || suffix[0] = 'E') ->
                            parseExponent input suffix |> Result.map (fun e -> DecimalExponent, e, 0)
                        | None when suffix.Contains ' ' || suffix.Contains '.' || suffix.StartsWith '-' ->
                            Error(MalformedQuantity(input, $"\"%s{suffix}\" cannot follow the number"))
                        | None -> Error(UnknownSuffix(input, suffix))

                suffixScale
                |> Result.bind (fun (format, exponent, power) ->
                    let digits = (whole + fraction).TrimStart '0'
                    let coefficient = if digits.Length = 0 then 0I else BigInteger.Parse digits

                    let magnitude =
                        if power = 0 then
                            decimalNanos coefficient digits.Length (exponent - fraction.Length)
                        else
                            // Binary suffixes are bounded, so this is bounded by the input's length.
                            Some(
                                ceilDiv
                                    (coefficient * BigInteger.Pow(1024I, power) * nanosPerUnit)
                                    (BigInteger.Pow(10I, fraction.Length))
                            )

                    match magnitude with
                    | Some m when m <= maxNanos -> Ok(make format (if negative then -m else m))
                    | Some _
                    | None -> Error(QuantityOutOfRange input))

    /// Parses like `parse` and refuses a negative value.
    let parseNonNegative (input: string) : Result<Quantity, QuantityError> =
        parse input
        |> Result.bind (fun q -> if q.nanos.Sign < 0 then Error(NegativeQuantity input) else Ok q)

    /// The exact value of a finite float as the shortest decimal that reads back as the same float (what a person
    /// wrote, so 0.1 is 0.1 and not 0.1000000000000000055…), rounded away from zero to whole nanos.
    let ofFloat (format: QuantityFormat) (value: float) : Result<Quantity, QuantityError> =
        if not (Double.IsFinite value) then
            Error(NotFiniteNumber value)
        else
            parse (value.ToString("R", CultureInfo.InvariantCulture))
            |> Result.map (fun q -> make format q.nanos)

    /// Formats in Kubernetes' canonical form: no fractional digits, the largest suffix that loses no precision,
    /// a sign only when negative ("1500m", "2", "1536Mi", "1e3", "0").
    let format (quantity: Quantity) : string =
        if quantity.nanos.IsZero then
            "0"
        else
            match quantity.format with
            | BinarySI ->
                let rec reduce (value: bigint) power =
                    if power < 6 && (value % 1024I).IsZero then
                        reduce (value / 1024I) (power + 1)
                    else
                        value, power

                let mantissa, power = reduce (quantity.nanos / nanosPerUnit) 0
                mantissa.ToString(CultureInfo.InvariantCulture) + fst binarySuffixes[power]
            | DecimalSI ->
                let mantissa, exponent = canonicalDecimal quantity.nanos
                let suffix = decimalSuffixes |> List.find (fun (_, e) -> e = exponent) |> fst
                mantissa.ToString(CultureInfo.InvariantCulture) + suffix
            | DecimalExponent ->
                let mantissa, exponent = canonicalDecimal quantity.nanos
                mantissa.ToString(CultureInfo.InvariantCulture) + "e" + exponent.ToString(CultureInfo.InvariantCulture)
