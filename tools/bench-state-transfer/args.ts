/** `--flag N` from the command line as a number, or `dflt` when the flag is absent (the microbenchmarks' options). */
export function numberArg(flag: string, dflt: number): number {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
