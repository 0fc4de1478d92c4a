export function ColourChip({ colour, large = false }: { colour: { name: string; hex: string; text: string }; large?: boolean }) {
  return (
    <span className={large ? "chip chip-large" : "chip"} style={{ background: colour.hex, color: colour.text }} data-colour={colour.hex}>
      {colour.name}
    </span>
  );
}
