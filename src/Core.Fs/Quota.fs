namespace HybridBatch.Core

open System

// A namespace's ResourceQuota makes the API server refuse a create with 403 Forbidden and a message of the quota
// admission plugin ("exceeded quota: NAME, requested: …, used: …, limited: …"). Such a refusal is not a failure of
// the job: room comes back when pods end. These are the words of the refusal and of the quotas' status, as data.

/// One resource a quota refusal names, with what was requested, used and allowed (as the server wrote them).
type QuotaAmount =
    { resource: string
      requested: string option
      used: string option
      limited: string option }

/// A create refused because a ResourceQuota of the namespace has no room for it.
type QuotaRefusal =
    {
      /// The quota's name.
      quota: string
      /// The resources it has no room for.
      amounts: QuotaAmount list
      /// The server's message.
      message: string
      /// How long the server asked to wait, when it said.
      retryAfter: TimeSpan option }

/// A ResourceQuota's status: what it allows (`hard`) and what the namespace uses of it, by resource name.
type QuotaStatus =
    { name: string
      hard: Map<string, string>
      used: Map<string, string> }

/// Reading quota refusals and the room quotas leave.
[<RequireQualifiedAccess>]
module Quota =

    [<Literal>]
    let private Exceeded = "exceeded quota: "

    [<Literal>]
    let private Unknown = "status unknown for quota: "

    /// "a=1,b=2" as pairs; entries without '=' are skipped.
    let private pairs (text: string) =
        text.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
        |> Array.choose (fun entry ->
            match entry.IndexOf '=' with
            | i when i > 0 -> Some(entry.Substring(0, i), entry.Substring(i + 1))
            | _ -> None)
        |> Map.ofArray

    /// The text after `label` in `rest` up to the next ", word:" label or the end.
    let private field (label: string) (rest: string) =
        match rest.IndexOf(label + ": ", StringComparison.Ordinal) with
        | -1 -> None
        | i ->
            let start = i + label.Length + 2
            let tail = rest.Substring start

            let stop =
                [ ", requested: "; ", used: "; ", limited: "; ", resources: " ]
                |> List.choose (fun next ->
                    match tail.IndexOf(next, StringComparison.Ordinal) with
                    | -1 -> None
                    | j -> Some j)
                |> function
                    | [] -> tail.Length
                    | found -> List.min found

            Some(tail.Substring(0, stop).Trim())

    /// The refusal a 403's message describes, if it is the quota admission's ("exceeded quota: …", or "status
    /// unknown for quota: …" while a new quota's usage is being counted); None for any other 403.
    let ofMessage (message: string option) (retryAfter: TimeSpan option) : QuotaRefusal option =
        match message with
        | None -> None
        | Some message ->
            let at (marker: string) =
                match message.IndexOf(marker, StringComparison.Ordinal) with
                | -1 -> None
                | i -> Some(message.Substring(i + marker.Length))

            let name (rest: string) =
                match rest.IndexOf(',') with
                | -1 -> rest.Trim()
                | i -> rest.Substring(0, i).Trim()

            match at Exceeded, at Unknown with
            | Some rest, _ ->
                let requested = field "requested" rest |> Option.map pairs |> Option.defaultValue Map.empty
                let used = field "used" rest |> Option.map pairs |> Option.defaultValue Map.empty
                let limited = field "limited" rest |> Option.map pairs |> Option.defaultValue Map.empty

                let resources =
                    [ yield! requested.Keys; yield! used.Keys; yield! limited.Keys ] |> List.distinct |> List.sort

                Some
                    { quota = name rest
                      amounts =
                        resources
                        |> List.map (fun r ->
                            { resource = r
                              requested = requested.TryFind r
                              used = used.TryFind r
                              limited = limited.TryFind r })
                      message = message.Trim()
                      retryAfter = retryAfter }
            | None, Some rest ->
                let resources =
                    field "resources" rest
                    |> Option.map (fun r -> r.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries))
                    |> Option.defaultValue [||]

                Some
                    { quota = name rest
                      amounts =
                        resources
                        |> Array.map (fun r ->
                            { resource = r
                              requested = None
                              used = None
                              limited = None })
                        |> List.ofArray
                      message = message.Trim()
                      retryAfter = retryAfter }
            | None, None -> None

    let private nanos (text: string option) =
        text
        |> Option.bind (fun t ->
            match Quantity.parse t with
            | Ok q -> Some(Quantity.nanos q)
            | Error _ -> None)

    /// Whether the job alone asks for more of the amount's resource than the quota allows in all.
    let private exceeds (amount: QuotaAmount) =
        match nanos amount.requested, nanos amount.limited with
        | Some requested, Some limited -> requested > limited
        | _ -> false

    /// The amounts of a refusal the job alone asks more of than the quota allows in all: however many pods end,
    /// they never fit.
    let tooBig (refusal: QuotaRefusal) : QuotaAmount list =
        refusal.amounts |> List.filter exceeds

    /// Whether the job alone asks for more than the quota allows in all.
    let neverFits (refusal: QuotaRefusal) : bool = not (List.isEmpty (tooBig refusal))

    /// Why a job that never fits its namespace's quota ends, and how to fix it.
    let explainNeverFits (refusal: QuotaRefusal) : string =
        let amounts =
            tooBig refusal
            |> List.map (fun a ->
                let requested = Option.defaultValue "" a.requested
                let limited = Option.defaultValue "" a.limited
                $"{a.resource} {requested} (the quota allows {limited})")
            |> String.concat ", "

        $"the job asks for more than the namespace's ResourceQuota {refusal.quota} allows in all: {amounts}; ask for less, or raise the quota"

    /// The quota keys that count a container's request or limit of `resource`: `requests.cpu` and `cpu` count a CPU
    /// request, `limits.cpu` a CPU limit (and so for memory and ephemeral storage); an extended resource has its
    /// `requests.` key only.
    let private keys (resource: string) (isLimit: bool) =
        match isLimit, resource with
        | true, r -> [ $"limits.{r}" ]
        | false, ("cpu" | "memory" | "ephemeral-storage" as r) -> [ $"requests.{r}"; r ]
        | false, r -> [ $"requests.{r}" ]

    /// A quota a job's container alone asks more of than it allows in all, from the quotas' status (as a refusal
    /// would name it), or None: such a job never fits, however many pods end, and need not be created to learn it.
    let tooBigFor (quotas: QuotaStatus list) (requests: Map<string, string>) (limits: Map<string, string>) : QuotaRefusal option =
        let asked =
            [ for KeyValue(r, v) in requests do
                  for key in keys r false -> key, v
              for KeyValue(r, v) in limits do
                  for key in keys r true -> key, v ]

        quotas
        |> List.tryPick (fun q ->
            let over =
                asked
                |> List.choose (fun (key, value) ->
                    q.hard.TryFind key
                    |> Option.map (fun hard ->
                        { resource = key
                          requested = Some value
                          used = q.used.TryFind key
                          limited = Some hard }))
                |> List.filter exceeds

            if List.isEmpty over then
                None
            else
                Some
                    { quota = q.name
                      amounts = over
                      message = ""
                      retryAfter = None })

    /// What a create refused by a quota waits for, in words.
    let explain (refusal: QuotaRefusal) : string =
        let amounts =
            refusal.amounts
            |> List.map (fun a ->
                match a.requested, a.used, a.limited with
                | Some r, Some u, Some l -> $"{a.resource}: requested {r}, used {u} of {l}"
                | _ -> a.resource)
            |> String.concat "; "

        $"the namespace's ResourceQuota {refusal.quota} has no room now ({amounts})"

    /// The resource names of a quota that count the run's objects: pods, and Jobs when the run creates Jobs.
    let private counted (asJobs: bool) =
        [ "pods"; "count/pods"; if asJobs then "count/jobs.batch" ]

    /// How many more of the run's objects the quotas admit now (the least room of any quota counting them), or
    /// None when none counts them (or none has counted its usage yet).
    let room (asJobs: bool) (quotas: QuotaStatus list) : int option =
        let count (text: string option) =
            nanos text |> Option.map (fun n -> n / Numerics.BigInteger.Pow(10I, 9))

        quotas
        |> List.collect (fun q ->
            counted asJobs
            |> List.choose (fun resource ->
                match count (q.hard.TryFind resource) with
                | None -> None
                | Some hard ->
                    // Usage not counted yet (a new quota): the refusals, not this, tell the room.
                    count (q.used.TryFind resource) |> Option.map (fun used -> max 0I (hard - used))))
        |> function
            | [] -> None
            | rooms -> Some(int (min (List.min rooms) (Numerics.BigInteger Int32.MaxValue)))
