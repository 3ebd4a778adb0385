using CdsHooks.Cli;
using Spectre.Console.Cli;

// cdshooks: the engine of the CDS Hooks service, for the people who write and review the rules.
var app = new CommandApp();
app.Configure(config =>
{
    config.SetApplicationName("cdshooks");
    config.AddCommand<EvaluateCommand>("evaluate").WithDescription("Run the engine on a CDS Hooks request file and print the cards.")
        .WithExample("evaluate", "samples/requests/order-sign-mirtazapine-80-year-old-on-clonazepam.json");
    config.AddCommand<ExplainCommand>("explain").WithDescription("For every rule, whether it fired for a request and why or why not.")
        .WithExample("explain", "samples/requests/order-sign-mirtazapine-80-year-old-on-clonazepam.json");
    config.AddCommand<CheckCommand>("check").WithDescription("Load cards/, validate every rule and value set, and run every rule's examples.")
        .WithExample("check", "--cards", "cards");
    config.AddCommand<ValueSetsCommand>("valuesets").WithDescription("Rebuild the drug value sets from an RxNorm release (RXNCONSO.RRF, RXNREL.RRF).")
        .WithExample("valuesets", "--rxnconso", "rrf/RXNCONSO.RRF", "--rxnrel", "rrf/RXNREL.RRF");
});
return await app.RunAsync(args);
