using System.Security.Cryptography;
using System.Text;
using HybridBatch.Daemon.Tes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace HybridBatch.Daemon.Hosting;

/// <summary>The daemon's one bearer token (<c>Tes:Token</c>, <c>--token</c>), required on every API it serves when set.</summary>
internal static class BearerToken
{
    /// <summary>What a request without the token is told.</summary>
    public const string Required = "a bearer token is required: send 'Authorization: Bearer <token>'";

    /// <summary>Answers requests to <paramref name="group"/> that lack the token with <paramref name="unauthorized"/>'s response.</summary>
    public static RouteGroupBuilder RequireBearerToken(this RouteGroupBuilder group, Func<IResult> unauthorized)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(unauthorized);
        group.AddEndpointFilter(async (context, next) =>
        {
            var token = context.HttpContext.RequestServices.GetRequiredService<IOptions<TesOptions>>().Value.Token;
            if (!string.IsNullOrEmpty(token) && !Authorized(context.HttpContext.Request, token))
            {
                context.HttpContext.Response.Headers.WWWAuthenticate = "Bearer";
                return unauthorized();
            }

            return await next(context).ConfigureAwait(false);
        });
        return group;
    }

    private static bool Authorized(HttpRequest request, string token)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var given = Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim());
        return CryptographicOperations.FixedTimeEquals(given, Encoding.UTF8.GetBytes(token));
    }
}
