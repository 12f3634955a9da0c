// What the Learn walkthrough has seen the user do in this session (the rest it detects
// from the engine: images present, containers running with a published port).

export const learn = $state({
  pulled: "" as string,
  opened: false,
  built: "" as string,
  pushed: "" as string,
});
