/// Names and labels of the Kubernetes objects the batch system creates: valid for any owner and run id.
module HybridBatch.Core.Naming

open System

/// Label keys on every Job and pod of a run.
[<RequireQualifiedAccess>]
module Labels =
    /// The run the object belongs to.
    [<Literal>]
    let Run = "hybridbatch.io/run"

    /// Who issued the job.
    [<Literal>]
    let Owner = "hybridbatch.io/owner"

    /// The batch system's job id (never parsed out of a name).
    [<Literal>]
    let JobId = "hybridbatch.io/job-id"

    /// Marks the short-lived Jobs that clean a node's work directory.
    [<Literal>]
    let Cleanup = "hybridbatch.io/cleanup"

/// Kubernetes caps names that end up in label values (the Job name goes into the `job-name` label) at 63.
[<Literal>]
let MaxLabelLength = 63

let private isLower (c: char) = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')

/// Keep lowercase letters, digits and dashes; trim dashes at both ends.
let private dnsPart (text: string) =
    let kept =
        text.ToLowerInvariant()
        |> String.filter (fun c -> isLower c || c = '-' || c = '.')
        |> String.map (fun c -> if c = '.' then '-' else c)

    kept.Trim '-'

/// FNV-1a, 32 bits: a stable, dependency-free digest so two long inputs that share a prefix keep distinct names.
let private digest (text: string) =
    let mutable hash = 2166136261u

    for c in text do
        hash <- (hash ^^^ uint32 c) * 16777619u

    hash.ToString("x8")

/// Toil's default owner: the user name lowercased, keeping letters, digits, '-' and '.', at most 100 characters.
let defaultOwner (userName: string) : string =
    let kept =
        userName.ToLowerInvariant()
        |> String.filter (fun c -> isLower c || c = '-' || c = '.')

    let kept = if kept.Length > 100 then kept.Substring(0, 100) else kept
    if kept = "" then "hybridbatch" else kept

/// A short tag for a run id: the id itself when short and DNS-safe, else a prefix and a digest of the whole id.
let runTag (runId: string) : string =
    let part = dnsPart runId

    if part.Length > 0 && part.Length <= 12 && part = runId then
        part
    else
        let prefix = if part.Length > 3 then part.Substring(0, 3).Trim '-' else part
        (if prefix = "" then "" else prefix + "-") + digest runId

/// The Kubernetes Job name of a job: `<owner>-<run tag>-<id>`, a DNS-1123 label of at most 63 characters for any
/// owner (Toil fails to create jobs when the owner is long: the name is copied into the `job-name` label).
let jobName (owner: string) (runId: string) (id: int) : string =
    let suffix = $"{runTag runId}-{id}"
    let room = MaxLabelLength - suffix.Length - 1
    let owner = dnsPart owner
    // Names must start with a letter for some tools: an owner that does not (or none) gets a prefix. Only the owner
    // is ever shortened, never the run tag and id that make the name unique.
    let owner = if owner.Length > 0 && Char.IsLetter owner[0] then owner else "hb-" + owner
    let owner = (if owner.Length > room then owner.Substring(0, max 0 room) else owner).Trim '-'
    $"{owner}-{suffix}"

/// The name of the Job that cleans a node's work directory for a run.
let cleanupName (runId: string) (node: string) : string =
    let name = $"hb-clean-{runTag runId}-{digest node}"
    if name.Length > MaxLabelLength then name.Substring(0, MaxLabelLength) else name

/// A label value for an owner: at most 63 characters of `[a-z0-9-]`, starting and ending alphanumeric.
let ownerLabel (owner: string) : string =
    let part = dnsPart owner
    let part = (if part.Length > MaxLabelLength then part.Substring(0, MaxLabelLength) else part).Trim '-'
    if part = "" then "unknown" else part

/// Whether a run id can be a label value as it is (at most 63 characters of letters, digits, '-', '_', '.', starting
/// and ending alphanumeric); the error says how to fix it.
let checkRunId (runId: string) : Result<string, string> =
    let ok (c: char) = Char.IsAsciiLetterOrDigit c || c = '-' || c = '_' || c = '.'

    if String.IsNullOrEmpty runId then
        Error "the run id is empty: give a run id, or leave it unset to get a new one"
    elif runId.Length > MaxLabelLength then
        Error $"the run id '{runId}' has {runId.Length} characters: use at most {MaxLabelLength}"
    elif not (String.forall ok runId) then
        Error $"the run id '{runId}' may hold only letters, digits, '-', '_' and '.'"
    elif not (Char.IsAsciiLetterOrDigit runId[0] && Char.IsAsciiLetterOrDigit runId[runId.Length - 1]) then
        Error $"the run id '{runId}' must start and end with a letter or digit"
    else
        Ok runId
