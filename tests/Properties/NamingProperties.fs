/// Properties of the names and labels the batch system gives Kubernetes objects.
module HybridBatch.Properties.NamingProperties

open System.Text.RegularExpressions
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open HybridBatch.Core

let private dns1123Label = Regex "\\A[a-z]([-a-z0-9]*[a-z0-9])?\\z"

let private anyText =
    Gen.oneof
        [ ArbMap.defaults |> ArbMap.generate<char> |> Gen.arrayOf |> Gen.map System.String
          Gen.elements [ "Alice"; "bob.smith"; "-_-"; "Ünïcødé"; String.replicate 100 "x"; "UPPER-case.dots" ]
          Gen.choose (0, 300) |> Gen.map (fun n -> String.replicate n "ab-")
          // Long owners that start with a digit: the name needs a prefix, and shortening must keep the id.
          Gen.choose (0, 120) |> Gen.map (fun n -> "7" + String.replicate n "x") ]

[<CoreProperty>]
let ``a job name is a DNS-1123 label of at most 63 characters for any owner and run id`` () =
    Prop.forAll (Arb.fromGen (Gen.zip3 anyText anyText (Gen.choose (1, System.Int32.MaxValue)))) (fun (owner, run, id) ->
        let name = Naming.jobName owner run id

        (name.Length <= 63 |> Prop.label $"length {name.Length}")
        .&. (dns1123Label.IsMatch name |> Prop.label $"'{name}' is a DNS-1123 label"))

[<CoreProperty>]
let ``different jobs of a run have different names`` () =
    let ids = Gen.zip (Gen.choose (1, 100_000)) (Gen.choose (1, 100_000))

    Prop.forAll (Arb.fromGen (Gen.zip3 anyText anyText ids)) (fun (owner, run, (a, b)) ->
        a = b || Naming.jobName owner run a <> Naming.jobName owner run b)

[<CoreProperty>]
let ``runs with different ids give the same job different names`` () =
    Prop.forAll (Arb.fromGen (Gen.zip3 anyText anyText anyText)) (fun (owner, runA, runB) ->
        runA = runB || Naming.jobName owner runA 1 <> Naming.jobName owner runB 1)

[<CoreProperty>]
let ``an owner label is a valid label value`` () =
    Prop.forAll (Arb.fromGen anyText) (fun owner ->
        let label = Naming.ownerLabel owner
        label.Length <= 63 && dns1123Label.IsMatch("a" + label) && not (label.EndsWith "-"))

[<CoreProperty>]
let ``a run id is accepted exactly when it is a valid label value`` () =
    let labelValue = Regex "\\A[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\\z"

    Prop.forAll (Arb.fromGen anyText) (fun run ->
        let valid = run.Length <= 63 && labelValue.IsMatch run

        match Naming.checkRunId run with
        | Ok _ -> valid
        | Error message -> not valid && message.Length > 0)
