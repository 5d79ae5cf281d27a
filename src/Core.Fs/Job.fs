namespace HybridBatch.Core

open System
open System.Collections.Generic
open System.Text.RegularExpressions

/// A batch system job id: unique, increasing, never reused.
type JobId = int

/// Milliseconds since the Unix epoch, or a duration in milliseconds.
type Millis = int64

/// What the pool accounting needs of a job, and the name of the Kubernetes Job that backs it.
type JobRequest =
    { name: string
      millicores: int64
      memory: int64
      disk: int64 }

/// What every job of one batch system shares.
type JobSettings =
    {
      /// Who issues the jobs; part of every Job's name.
      owner: string
      /// The run the jobs belong to; part of every Job's name.
      runId: string
      /// The image of a job that names none.
      image: string
      /// Bytes added to each job's memory and disk for the container's own needs (Toil adds 512 MiB).
      overhead: int64
      /// The most one job may ask for.
      limits: ResourceLimits }

/// A job as the caller describes it.
type JobSpec =
    {
      /// The id the job gets (the model's next id).
      id: JobId
      /// A human-readable name, if any.
      description: string | null
      /// The command, run by `/bin/sh -c` as one argument.
      command: string
      /// The image; the settings' image when None.
      image: string option
      /// What the job asks for.
      resources: ResourceRequest
      /// Where its pod may and should land (preemptibility aside).
      placement: Placement
      /// Whether it may run on preemptible (spot) nodes.
      preemptible: bool
      /// The batch environment as it was when the job was issued, in order (shared by the jobs issued until it changes).
      batchEnvironment: KeyValuePair<string, string> array
      /// The job's own variables, in order; they win over the batch environment's.
      environment: KeyValuePair<string, string> array }

/// Everything a job needs to run, checked once: what `Job.prepare` returns, what `Event.Issued` carries into the
/// model and `Effect.Create` hands back to the shell.
type PreparedJob =
    { id: JobId
      /// The Kubernetes Job's name and the job's share of the pool.
      request: JobRequest
      /// The human-readable name, if any.
      description: string | null
      command: string
      /// The image, the settings' default filled in.
      image: string
      /// The container's requests and limits.
      resources: KubernetesResources
      /// The pod's node affinity and tolerations, accelerator models and preemptibility included.
      placement: PodPlacement
      /// The container's variables in order, each name once with the value that wins.
      environment: KeyValuePair<string, string> array }

/// Why a job cannot be issued; `Message` says what was wrong and how to fix it.
type JobError =
    /// The command is empty or white space.
    | EmptyCommand
    /// The command is longer than Kubernetes objects comfortably hold.
    | CommandTooLong of length: int
    /// The image is empty or has white space in it.
    | InvalidImage of image: string
    /// A resource request is invalid, above a maximum, or cannot be provided.
    | InvalidResources of ResourceError
    /// An environment variable name Kubernetes does not accept.
    | InvalidEnvironmentName of name: string
    /// A label or taint of the placement is not valid Kubernetes syntax.
    | InvalidPlacement of PlacementError

    /// What was wrong and how to fix it.
    member this.Message =
        match this with
        | EmptyCommand -> "The command is empty: give a command for /bin/sh -c to run."
        | CommandTooLong length ->
            $"The command has %d{length} characters: Kubernetes objects are limited in size, so keep commands under 256 KiB and put data in files."
        | InvalidImage image ->
            $"The job's image '%s{image}' is not an image reference: name one such as busybox:1.35, or leave it null for the batch system's image."
        | InvalidResources error -> error.Message
        | InvalidEnvironmentName name ->
            $"'%s{name}' is not a valid environment variable name: use letters, digits, '_', '-' and '.', not starting with a digit."
        | InvalidPlacement error -> error.Message

/// Preparing a job: every check of what the caller asked for, and everything the job needs, in one place.
[<RequireQualifiedAccess; CompilationRepresentation(CompilationRepresentationFlags.ModuleSuffix)>]
module Job =

    /// The longest command accepted, 256 KiB.
    [<Literal>]
    let MaxCommandLength = 262144

    let private environmentName =
        Regex("^[-._a-zA-Z][-._a-zA-Z0-9]*$", RegexOptions.CultureInvariant)

    /// Checks an environment variable name as Kubernetes does: letters, digits, '_', '-' and '.', not starting with a
    /// digit.
    let checkEnvironmentName (name: string) : Result<unit, JobError> =
        if environmentName.IsMatch name then
            Ok()
        else
            Error(InvalidEnvironmentName name)

    /// Toil's `check_resource_request` with the batch system's maxima.
    let checkResources (settings: JobSettings) (description: string option) (request: ResourceRequest) =
        Resources.checkResourceRequest settings.limits description request

    let private checkCommand (command: string) =
        if String.IsNullOrWhiteSpace command then Error EmptyCommand
        elif command.Length > MaxCommandLength then Error(CommandTooLong command.Length)
        else Ok()

    let private checkImage (image: string option) =
        match image with
        | Some image when image.Length = 0 || String.exists Char.IsWhiteSpace image -> Error(InvalidImage image)
        | Some _
        | None -> Ok()

    let private checkEnvironment (environment: KeyValuePair<string, string> array) =
        environment
        |> Array.tryPick (fun variable ->
            match checkEnvironmentName variable.Key with
            | Error error -> Some error
            | Ok() -> None)
        |> Option.map Error
        |> Option.defaultValue (Ok())

    /// The container's variables: the batch environment's, then the job's own, each name once, in the order of
    /// first appearance, with the last value.
    let private merge (batch: KeyValuePair<string, string> array) (own: KeyValuePair<string, string> array) =
        if own.Length = 0 then
            batch
        elif batch.Length = 0 then
            own
        else
            let merged = Dictionary<string, string>(StringComparer.Ordinal)

            for variable in Seq.append batch own do
                merged[variable.Key] <- variable.Value

            Array.ofSeq merged

    /// The caller's placement with the job's preemptibility and the node labels its accelerator models need, each
    /// required in place of a required label with the same key.
    let private placementOf (spec: JobSpec) (resources: KubernetesResources) =
        resources.requiredNodeLabels
        |> List.fold (fun placement (key, value) -> Placement.setRequiredLabel key [ value ] placement) spec.placement
        |> Placement.setPreemptible spec.preemptible
        |> Placement.apply
        |> Result.mapError InvalidPlacement

    /// Checks a job and works out everything it needs, in the order a caller's mistakes are reported: the command,
    /// the image, the resources (Toil's `check_resource_request`, then what Kubernetes can express), the environment
    /// names, the placement. The name is the Job's (`Naming.jobName`); cores are rounded once, for the container and
    /// the pool alike.
    let prepare (settings: JobSettings) (spec: JobSpec) : Result<PreparedJob, JobError> =
        checkCommand spec.command
        |> Result.bind (fun () -> checkImage spec.image)
        |> Result.bind (fun () ->
            Resources.admit settings.limits (Option.ofObj spec.description) settings.overhead spec.resources
            |> Result.mapError InvalidResources)
        |> Result.bind (fun admitted -> checkEnvironment spec.environment |> Result.map (fun () -> admitted))
        |> Result.bind (fun (resources, millicores) ->
            placementOf spec resources
            |> Result.map (fun placement ->
                { id = spec.id
                  request =
                    { name = Naming.jobName settings.owner settings.runId spec.id
                      millicores = millicores
                      memory = spec.resources.memory
                      disk = spec.resources.disk }
                  description = spec.description
                  command = spec.command
                  image = defaultArg spec.image settings.image
                  resources = resources
                  placement = placement
                  environment = merge spec.batchEnvironment spec.environment }))
