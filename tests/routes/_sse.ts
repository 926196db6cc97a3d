/** Reads a whole SSE body into its events (for streams that end). */
export async function readSseEvents(response: Response): Promise<{ event: string; data: string }[]> {
  const text = await response.text();
  return text.split("\n\n").filter((block) => block.trim() !== "").flatMap((block) => {
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    return data.length > 0 ? [{ event, data: data.join("\n") }] : [];
  });
}
