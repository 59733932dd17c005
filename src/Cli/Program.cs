using Spectre.Console;

return await Adanns.Cli.CliApp.RunAsync(args, AnsiConsole.Console, Console.Out, Console.Error).ConfigureAwait(false);
